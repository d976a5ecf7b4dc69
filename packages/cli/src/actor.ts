import { ValidationError } from '@holdfast/core';

/**
 * The identity recorded on every operator action: `--actor`, else `HOLDFAST_ACTOR`. Required,
 * because an audit trail entry without a who is not one.
 */
export function resolveActor(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const actor = (flag ?? env.HOLDFAST_ACTOR ?? '').trim();
  if (!actor)
    throw new ValidationError('command', [
      { path: '--actor', message: 'required (or set HOLDFAST_ACTOR): who is doing this' },
    ]);
  if (actor.length > 256 || /[\r\n]/.test(actor))
    throw new ValidationError('command', [
      { path: '--actor', message: 'must be one line of at most 256 characters' },
    ]);
  return actor;
}
