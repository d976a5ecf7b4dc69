#!/usr/bin/env node
import { runService } from '@holdfast/core';
import { Command, InvalidArgumentError } from 'commander';
import { runDev } from './dev.ts';
import { registerDisposeCommand } from './dispose-command.ts';
import { registerDlqCommands } from './dlq-commands.ts';
import { registerHoldCommands } from './hold-commands.ts';
import { registerPauseCommands } from './pause-commands.ts';
import { registerRebuildCommand } from './rebuild-command.ts';
import { registerRetentionCommands } from './retention-commands.ts';
import { SERVICES } from './services.ts';
import { registerStatusCommand } from './status-command.ts';
import { registerStoreCommands } from './store-commands.ts';

const program = new Command('holdfast')
  .description('Holdfast: a WORM archive and send pipeline for regulated communications and records')
  .showHelpAfterError();

program
  .command('dev')
  .description(
    'run the whole fleet in this process with the embedded defaults (local store, outbox transports, private Redis)',
  )
  .action(runDev);

program
  .command('run')
  .description(`run one service from the environment's config (${Object.keys(SERVICES).join(', ')})`)
  .argument('<service>', 'service name', (name: string) => {
    if (!(name in SERVICES))
      throw new InvalidArgumentError(
        `unknown service "${name}"; one of: ${Object.keys(SERVICES).join(', ')}`,
      );
    return name;
  })
  .action(async (name: string) => runService(name, await SERVICES[name]!()));

registerStoreCommands(program);
registerRetentionCommands(program);
registerDisposeCommand(program);
registerHoldCommands(program);
registerRebuildCommand(program);
registerDlqCommands(program);
registerPauseCommands(program);
registerStatusCommand(program);

try {
  await program.parseAsync();
} catch (error) {
  const code = (error as { code?: string }).code;
  process.stderr.write(
    `holdfast: ${(error as Error).message}${code?.startsWith('HOLDFAST_ERR_') ? ` (${code})` : ''}\n`,
  );
  process.exitCode = 1;
}
