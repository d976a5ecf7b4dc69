import { archiveOperatorAction } from '@holdfast/archiver';
import {
  ConfigError,
  loadConfig,
  payloadView,
  QUEUES,
  type QueueName,
  ValidationError,
} from '@holdfast/core';
import {
  type DeadLetter,
  type DeadLetterActionItem,
  type DeadLetterActionReport,
  type DeadLetterFilter,
  DeadLetterNotFoundError,
  type DeadLetterSelection,
  type DeadLetterSummary,
  DeadLetters,
  isQueueName,
} from '@holdfast/producer';
import { type Command, InvalidArgumentError } from 'commander';
import { resolveActor } from './actor.ts';
import { loadPolicy, withStore } from './context.ts';
import { print } from './output.ts';

async function withDeadLetters<T>(fn: (dl: DeadLetters) => Promise<T>): Promise<T> {
  const redisUrl = loadConfig().redisUrl;
  if (!redisUrl) throw new ConfigError('REDIS_URL', 'required: the dead letters live in Redis');
  const dl = new DeadLetters({ redisUrl });
  try {
    return await fn(dl);
  } catch (error) {
    if (dl.connectionError && /max retries per request/i.test((error as Error).message))
      throw new Error(`Redis (REDIS_URL) did not answer: ${dl.connectionError}`, { cause: error });
    throw error;
  } finally {
    await dl.close();
  }
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `30m`, `1h`, `2d`, `1w`: how long ago, for `--older-than` / `--newer-than`. */
export function parseDuration(text: string): number {
  const match = /^(\d{1,9})([smhdw])$/.exec(text.trim());
  if (!match)
    throw new InvalidArgumentError(
      `"${text}" is not a duration: use a number and a unit (s, m, h, d, w), e.g. 30m, 1h, 2d`,
    );
  return Number(match[1]) * UNITS[match[2]!]!;
}

function parseLimit(text: string): number {
  if (!/^\d{1,9}$/.test(text) || Number(text) < 1)
    throw new InvalidArgumentError(`"${text}" is not a positive whole number`);
  return Number(text);
}

function parseQueue(text: string): QueueName {
  if (!isQueueName(text))
    throw new InvalidArgumentError(`unknown queue "${text}"; one of: ${Object.values(QUEUES).join(', ')}`);
  return text;
}

interface FilterOptions {
  queue?: QueueName;
  reason?: string;
  olderThan?: number;
  newerThan?: number;
  limit?: number;
}

const FILTER_FLAGS = ['--queue', '--reason', '--older-than', '--newer-than', '--limit'] as const;

function withFilterOptions(command: Command): Command {
  return command
    .option('--queue <queue>', `only this queue (${Object.values(QUEUES).join(', ')})`, parseQueue)
    .option('--reason <text>', 'only entries whose reason contains this text (any case)')
    .option(
      '--older-than <duration>',
      'only entries dead for at least this long (30m, 1h, 2d, 1w)',
      parseDuration,
    )
    .option('--newer-than <duration>', 'only entries dead for at most this long', parseDuration)
    .option('--limit <n>', 'at most this many, oldest first', parseLimit);
}

function filterOf(opts: FilterOptions, now = Date.now()): DeadLetterFilter {
  return {
    ...(opts.queue ? { queue: opts.queue } : {}),
    ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
    ...(opts.olderThan !== undefined ? { deadBefore: new Date(now - opts.olderThan) } : {}),
    ...(opts.newerThan !== undefined ? { deadAfter: new Date(now - opts.newerThan) } : {}),
    ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
  };
}

/** `<queue> <jobId>…` or `--all` with the list filters; never both, never neither. */
export function selectionOf(
  queue: string | undefined,
  jobIds: readonly string[],
  opts: FilterOptions & { all?: boolean },
): DeadLetterSelection {
  const filtered = (['queue', 'reason', 'olderThan', 'newerThan', 'limit'] as const).some(
    (k) => opts[k] !== undefined,
  );
  if (opts.all) {
    if (queue !== undefined || jobIds.length > 0)
      throw new ValidationError('command', [
        {
          path: '--all',
          message: 'give either <queue> <jobId>… or --all (with --queue to pick a queue), not both',
        },
      ]);
    return { filter: filterOf(opts) };
  }
  if (filtered)
    throw new ValidationError('command', [
      { path: FILTER_FLAGS.join('|'), message: 'these select entries only together with --all' },
    ]);
  if (queue === undefined || jobIds.length === 0)
    throw new ValidationError('command', [
      { path: '<queue> <jobId>', message: 'name a queue and at least one job id, or select with --all' },
    ]);
  if (!isQueueName(queue))
    throw new ValidationError('command', [
      { path: '<queue>', message: `unknown queue "${queue}"; one of: ${Object.values(QUEUES).join(', ')}` },
    ]);
  return { refs: jobIds.map((jobId) => ({ queue, jobId })) };
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function ago(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172_800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86_400)}d ago`;
}

function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

function listText(entries: readonly DeadLetterSummary[], counts: Record<string, number>): string {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const perQueue = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([q, n]) => `${q} ${n}`)
    .join(', ');
  const footer = `${entries.length} shown; ${total} dead letter(s) in all${perQueue ? ` (${perQueue})` : ''}`;
  if (entries.length === 0) return `no dead letters match\n${footer}`;
  const rows = entries.map((e) => [
    e.queue,
    e.jobId,
    e.name,
    e.classification,
    `${e.attemptsMade}/${e.attempts}`,
    `${e.deadAt} (${ago(e.deadAt)})`,
    oneLine(e.reason, 80),
  ]);
  return `${table(['QUEUE', 'JOB ID', 'NAME', 'CLASS', 'ATTEMPTS', 'DEAD SINCE', 'REASON'], rows)}\n${footer}`;
}

/**
 * What `show` prints of an entry: everything but the payload itself, which may hold a message
 * body (an operator's terminal is not a place for those); `payloadView` says what it is.
 */
function showView(e: DeadLetter & { jobState: string }) {
  const { data, ...rest } = e;
  return {
    ...rest,
    // A child's own payload is kept only where it differs from the parent's: not shown either.
    children: rest.children.map((c) => ({
      queue: c.queue,
      jobId: c.jobId,
      ...(c.name ? { name: c.name } : {}),
    })),
    payload: payloadView(data),
  };
}

function showText(v: ReturnType<typeof showView>): string {
  const attempts = v.history.map((h) => {
    const which =
      h.firstAttempt === h.lastAttempt
        ? `attempt ${h.firstAttempt}`
        : `attempts ${h.firstAttempt}-${h.lastAttempt}`;
    const when =
      h.firstAt === h.lastAt
        ? (h.lastAt ?? 'time not recorded')
        : `${h.firstAt ?? '?'} .. ${h.lastAt ?? '?'}`;
    return `  run ${h.run}  ${which}  ${when}  ${oneLine(h.error, 200)}`;
  });
  const lines = [
    `${v.queue} ${v.jobId} (${v.name})`,
    `status:          ${v.status}${v.replayedAt ? ` (last replayed ${v.replayedAt} by ${v.replayedBy ?? 'unknown'})` : ''}`,
    `classification:  ${v.classification}`,
    `reason:          ${oneLine(v.reason, 500)}`,
    `attempts:        ${v.attemptsMade} of ${v.attempts}`,
    `first failed:    ${v.firstFailedAt}`,
    `dead since:      ${v.deadAt} (${ago(v.deadAt)})`,
    `replays:         ${v.replays}`,
    `job in BullMQ:   ${v.jobState === 'unknown' ? 'gone' : v.jobState}`,
    `payload:         ${v.payload.bytes} bytes${v.payload.event ? `, event ${v.payload.event.id} ${v.payload.event.type ?? ''} ${v.payload.event.channel ?? ''}`.trimEnd() : ''}${v.payload.events ? `, ${v.payload.events.length} events` : ''}`,
  ];
  if (v.payload.events) lines.push(...v.payload.events.map((id) => `  event ${id}`));
  if (v.parent) lines.push(`parent:          ${v.parent.queue} ${v.parent.jobId}`);
  if (v.children.length)
    lines.push(`children:        ${v.children.map((c) => `${c.queue} ${c.jobId}`).join(', ')}`);
  lines.push(`history (${v.history.length} record(s)):`, ...attempts);
  return lines.join('\n');
}

interface ActionOutput extends DeadLetterActionReport {
  actor: string | null;
  /** The archived operator event, written before anything changed; null in a dry run or when nothing changed. */
  operatorEvent: { key: string; versionId: string } | null;
}

function actionText(r: ActionOutput): string {
  const verb = r.operation === 'replay' ? 'replayed' : 'discarded';
  const count = (status: DeadLetterActionItem['status']) => r.items.filter((i) => i.status === status).length;
  const head = r.dryRun
    ? `dry run: ${count('planned')} would be ${verb}, ${count('no-op')} no-op; nothing was changed`
    : `${count('done')} ${verb}, ${count('no-op')} no-op${count('error') ? `, ${count('error')} failed` : ''}`;
  if (r.items.length === 0) return `nothing selected\n${head}`;
  const rows = r.items.map((i) => [i.queue, i.jobId, i.action, i.status, oneLine(i.detail, 120)]);
  const lines = [head, table(['QUEUE', 'JOB ID', 'ACTION', 'STATUS', 'DETAIL'], rows)];
  if (r.operatorEvent) lines.push(`recorded as ${r.operatorEvent.key}`);
  return lines.join('\n');
}

type ActionOptions = FilterOptions & { all?: boolean; dryRun?: boolean; actor?: string; json?: boolean };

async function runAction(
  operation: 'replay' | 'discard',
  queue: string | undefined,
  jobIds: string[],
  opts: ActionOptions,
): Promise<void> {
  const selection = selectionOf(queue, jobIds, opts);
  let output: ActionOutput;
  if (opts.dryRun) {
    const actor = opts.actor ?? process.env.HOLDFAST_ACTOR ?? null;
    const report = await withDeadLetters((dl) => dl[operation](selection, { dryRun: true }));
    output = { ...report, actor, operatorEvent: null };
  } else {
    const actor = resolveActor(opts.actor);
    const policy = await loadPolicy();
    let operatorEvent: ActionOutput['operatorEvent'] = null;
    const report = await withStore((store) =>
      withDeadLetters((dl) =>
        dl[operation](selection, {
          actor,
          // The operator event is archived under lock before any entry or job changes.
          beforeChange: async (items) => {
            const { archived } = await archiveOperatorAction(store, policy, {
              type: operation === 'replay' ? 'dlq.replayed' : 'dlq.discarded',
              actor,
              subject: 'dead-letters',
              data: {
                count: items.length,
                items: items.map((i) => ({
                  queue: i.queue,
                  jobId: i.jobId,
                  name: i.name,
                  ...(i.eventId ? { eventId: i.eventId } : {}),
                  action: i.action,
                  classification: i.classification,
                  reason: i.reason,
                  deadAt: i.deadAt,
                })),
              },
            });
            operatorEvent = { key: archived.key, versionId: archived.versionId };
          },
        }),
      ),
    );
    output = { ...report, actor, operatorEvent };
  }
  if (output.items.some((i) => i.status === 'error')) process.exitCode = 1;
  print(opts, output, actionText);
}

/** `holdfast dlq list|show|replay|discard`: the jobs that failed for good, and what to do with them. */
export function registerDlqCommands(program: Command): void {
  const dlq = program
    .command('dlq')
    .description(
      'dead letters: jobs that failed for good (permanent errors, exhausted retries); list, show, replay, discard',
    );

  withFilterOptions(dlq.command('list').description('list dead letters, oldest first'))
    .option('--json', 'machine-readable output')
    .action(async (opts: FilterOptions & { json?: boolean }) => {
      const { entries, counts } = await withDeadLetters(async (dl) => ({
        entries: await dl.list(filterOf(opts)),
        counts: await dl.counts(),
      }));
      print(opts, entries, (list) => listText(list, counts));
    });

  dlq
    .command('show')
    .description('one dead letter: reason, classification, every attempt and when, what became of its job')
    .argument('<queue>', `the queue (${Object.values(QUEUES).join(', ')})`, parseQueue)
    .argument('<jobId>', 'the job id (for message and record jobs, the event id)')
    .option('--json', 'machine-readable output')
    .action(async (queue: QueueName, jobId: string, opts: { json?: boolean }) => {
      const entry = await withDeadLetters((dl) => dl.show(queue, jobId));
      if (!entry) throw new DeadLetterNotFoundError([{ queue, jobId }]);
      print(opts, showView(entry), showText);
    });

  const action = (name: 'replay' | 'discard', description: string) =>
    withFilterOptions(
      dlq
        .command(name)
        .description(description)
        .argument('[queue]', 'the queue of the named jobs')
        .argument('[jobIds...]', 'the job ids')
        .option('--all', 'every dead letter the filters select (all of them without filters)'),
    )
      .option('--dry-run', 'show what would happen; change nothing')
      .option('--actor <who>', 'who is doing this (default: HOLDFAST_ACTOR)')
      .option('--json', 'machine-readable output')
      .action((queue: string | undefined, jobIds: string[], opts: ActionOptions) =>
        runAction(name, queue, jobIds, opts),
      );

  action(
    'replay',
    'run dead jobs again under their own job id (their idempotency key); archives a dlq.replayed operator event first',
  );
  action('discard', 'drop dead letters and their failed jobs; archives a dlq.discarded operator event first');
}
