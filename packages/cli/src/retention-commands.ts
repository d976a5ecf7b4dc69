import { archiveOperatorAction } from '@holdfast/archiver';
import { HoldfastError, type RetentionPolicy, ValidationError } from '@holdfast/core';
import { type ObjectStore, RetentionShortenError } from '@holdfast/worm-store';
import type { Command } from 'commander';
import { resolveActor } from './actor.ts';
import { loadPolicy, withStore } from './context.ts';
import { print } from './output.ts';

/** One archived object version about a subject, as `retention extend` sees it. */
export interface SubjectVersion {
  key: string;
  versionId: string;
  sha256: string;
  category: string;
  retainUntil: Date | undefined;
}

export interface SubjectFilter {
  subject: string;
  /** Only objects of this retention category. */
  category?: string;
  /** Only objects of this project (subjects are unique within a project). */
  project?: string;
}

/** At most this many unreadable objects are named in the error's message (all are on `objects`). */
const NAMED_IN_MESSAGE = 10;

/**
 * Archived objects that could not be read while looking for a subject's objects: any of them may
 * be about the subject, so extending the others would leave it at its old, shorter retention
 * while reporting success. Nothing is changed.
 */
export class UnreadableObjectsError extends HoldfastError {
  readonly subject: string;
  readonly objects: readonly { key: string; error: string }[];

  constructor(subject: string, objects: readonly { key: string; error: string }[]) {
    const named = objects.slice(0, NAMED_IN_MESSAGE).map((o) => `${o.key} (${o.error})`);
    const more = objects.length > named.length ? `, and ${objects.length - named.length} more` : '';
    super(
      'HOLDFAST_ERR_OBJECTS_UNREADABLE',
      `${objects.length} archived object(s) could not be read, so whether they are about subject "${subject}" is unknown; nothing was changed: ${named.join(', ')}${more}`,
    );
    this.subject = subject;
    this.objects = objects;
  }
}

/**
 * The platform's own record of operator changes is about the same subjects (a `retention.extended`
 * event names its subject) but is not the subject's data: extending it along would make the next,
 * shorter-but-valid extension fail on the audit entry's own retention.
 */
function isOperatorRecord(doc: Record<string, unknown>): boolean {
  const data = doc.data as Record<string, unknown> | undefined;
  return (
    doc.channel === 'record' &&
    typeof data?.actor === 'string' &&
    typeof doc.type === 'string' &&
    /^(retention|disposal|policy|hold|matter|dlq|reputation)\./.test(doc.type)
  );
}

/**
 * Every current object version about `subject`: JSON events and sidecars are read and matched on
 * their `subject` (and category, project); a sidecar's match brings its blob. O(archive): every
 * JSON object is read once. A metadata index is planned; until then this is an operator command
 * for occasional use, not a hot path. Fails closed: an object that cannot be read (denied,
 * throttled, corrupt) may be about the subject, so the scan reads on to name every such object,
 * then throws UnreadableObjectsError.
 */
export async function findSubjectVersions(
  store: ObjectStore,
  filter: SubjectFilter,
): Promise<SubjectVersion[]> {
  const matched = new Map<string, string>();
  const unreadable: { key: string; error: string }[] = [];
  for await (const { key } of store.list('')) {
    if (!key.endsWith('.json')) continue;
    let body: Uint8Array;
    try {
      ({ body } = await store.get(key));
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      // Deleted since the listing (disposed): there is no retention left to extend.
      if (code === 'HOLDFAST_ERR_OBJECT_NOT_FOUND') continue;
      unreadable.push({
        key,
        error: `${typeof code === 'string' ? `${code}: ` : ''}${(error as Error).message}`,
      });
      continue;
    }
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
    } catch {
      // The store returned the bytes it holds, and they are not JSON: not an event or sidecar (both
      // are written as JSON) but a blob named .json (a record document, media), whose sidecar
      // carries its subject and brings it along.
      continue;
    }
    if (typeof doc !== 'object' || doc === null) continue;
    if (doc.subject !== filter.subject || typeof doc.category !== 'string' || isOperatorRecord(doc)) continue;
    if (filter.category !== undefined && doc.category !== filter.category) continue;
    if (filter.project !== undefined && doc.project !== filter.project) continue;
    matched.set(key, doc.category);
    const blobKey = (doc.blob as { key?: unknown } | undefined)?.key;
    if (key.endsWith('.meta.json') && typeof blobKey === 'string') matched.set(blobKey, doc.category);
  }
  if (unreadable.length > 0) throw new UnreadableObjectsError(filter.subject, unreadable);
  const out: SubjectVersion[] = [];
  for (const [key, category] of [...matched].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const head = await store.head(key);
    if (!head) continue;
    out.push({
      key,
      versionId: head.versionId,
      sha256: head.sha256,
      category,
      retainUntil: head.retainUntil,
    });
  }
  return out;
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/** `--until`: an ISO 8601 date (`2040-12-31`, midnight UTC) or instant with a zone (`…T12:00:00Z`). */
export function parseUntil(text: string, now: Date = new Date()): Date {
  const fail = (message: string): never => {
    throw new ValidationError('command', [{ path: '--until', message }]);
  };
  if (!DATE_ONLY.test(text) && !DATE_TIME.test(text))
    fail(`"${text}" is not a date: use YYYY-MM-DD or an ISO 8601 instant with a zone (2040-12-31T00:00:00Z)`);
  // `Date` may roll 2040-02-30 over to March; a day that does not exist is a typo, not a wish.
  const day = text.slice(0, 10);
  const midnight = new Date(`${day}T00:00:00Z`);
  if (Number.isNaN(midnight.getTime()) || midnight.toISOString().slice(0, 10) !== day)
    fail(`"${text}" is not a valid calendar date`);
  const date = DATE_ONLY.test(text) ? midnight : new Date(text);
  if (Number.isNaN(date.getTime())) fail(`"${text}" is not a valid date and time`);
  if (date.getTime() <= now.getTime()) fail(`${date.toISOString()} is not in the future`);
  return date;
}

export interface ExtendedVersion {
  key: string;
  versionId: string;
  sha256: string;
  category: string;
  from: string | null;
  to: string;
}

export interface ExtendReport {
  subject: string;
  until: string;
  actor: string;
  matched: number;
  extended: ExtendedVersion[];
  /** Already retained exactly until `until`. */
  unchanged: string[];
  /** Where the `retention.extended` event is archived; null when nothing changed. */
  event: { key: string; versionId: string } | null;
}

/**
 * Extend every object about a subject to `until`. All are checked first: if any is retained
 * longer, the whole request is refused (RetentionShortenError naming that object and its date;
 * the one retained longest, so the message gives the earliest acceptable date) and nothing
 * changes. Otherwise the `retention.extended` event (who, the exact versions, hashes, old and
 * new dates) is archived first, then each version is extended. Equal dates are left as they are.
 */
export async function extendSubjectRetention(
  store: ObjectStore,
  policy: RetentionPolicy,
  input: SubjectFilter & { until: Date; actor: string },
): Promise<ExtendReport> {
  if (input.category !== undefined && !policy.has(input.category))
    throw new ValidationError('command', [
      {
        path: '--category',
        message: `unknown retention category "${input.category}" (policy ${policy.source} has: ${[...policy.categories.keys()].join(', ')})`,
      },
    ]);
  const versions = await findSubjectVersions(store, input);
  if (versions.length === 0)
    throw new ValidationError('command', [
      {
        path: '--subject',
        message: `no archived object has subject "${input.subject}"${input.category ? ` in category "${input.category}"` : ''}${input.project ? ` in project "${input.project}"` : ''}`,
      },
    ]);
  const longest = versions
    .filter((v) => v.retainUntil && v.retainUntil.getTime() > input.until.getTime())
    .sort((a, b) => b.retainUntil!.getTime() - a.retainUntil!.getTime())[0];
  if (longest)
    throw new RetentionShortenError(longest.key, longest.versionId, longest.retainUntil!, input.until);

  const changes = versions.filter((v) => !v.retainUntil || v.retainUntil.getTime() < input.until.getTime());
  const report: ExtendReport = {
    subject: input.subject,
    until: input.until.toISOString(),
    actor: input.actor,
    matched: versions.length,
    extended: changes.map((v) => ({
      key: v.key,
      versionId: v.versionId,
      sha256: v.sha256,
      category: v.category,
      from: v.retainUntil?.toISOString() ?? null,
      to: input.until.toISOString(),
    })),
    unchanged: versions.filter((v) => !changes.includes(v)).map((v) => v.key),
    event: null,
  };
  if (changes.length === 0) return report;
  const { archived } = await archiveOperatorAction(store, policy, {
    type: 'retention.extended',
    actor: input.actor,
    subject: input.subject,
    ...(input.project ? { project: input.project } : {}),
    data: {
      reason: 'operator',
      until: report.until,
      ...(input.category ? { category: input.category } : {}),
      policy: { source: policy.source, sha256: policy.fingerprint() },
      objects: report.extended,
    },
  });
  report.event = { key: archived.key, versionId: archived.versionId };
  for (const c of changes) await store.extendRetention(c.key, c.versionId, input.until);
  return report;
}

/** `holdfast retention extend`: extend (never shorten) the retention of a subject's objects. */
export function registerRetentionCommands(program: Command): void {
  const retention = program.command('retention').description('retention of archived objects');

  retention
    .command('extend')
    .description(
      "extend the retention of every archived object about a subject (extend only; scans the archive's JSON objects)",
    )
    .requiredOption('--subject <subject>', 'the subject (account, customer, contract) the objects are about')
    .requiredOption('--until <date>', 'new retain-until: YYYY-MM-DD (midnight UTC) or an ISO 8601 instant')
    .option('--category <category>', 'only objects of this retention category')
    .option('--project <project>', 'only objects of this project')
    .option('--actor <who>', 'who is extending it (default: HOLDFAST_ACTOR)')
    .option('--json', 'machine-readable output')
    .action(
      async (opts: {
        subject: string;
        until: string;
        category?: string;
        project?: string;
        actor?: string;
        json?: boolean;
      }) => {
        const actor = resolveActor(opts.actor);
        const until = parseUntil(opts.until);
        const policy = await loadPolicy();
        const report = await withStore((store) =>
          extendSubjectRetention(store, policy, {
            subject: opts.subject,
            until,
            actor,
            ...(opts.category ? { category: opts.category } : {}),
            ...(opts.project ? { project: opts.project } : {}),
          }),
        );
        print(opts, report, (r) =>
          [
            `${r.extended.length} of ${r.matched} object version(s) about "${r.subject}" extended to ${r.until}` +
              (r.unchanged.length ? ` (${r.unchanged.length} already retained until then)` : ''),
            ...(r.event ? [`recorded as ${r.event.key}`] : []),
            ...r.extended.map((e) => `  ${e.key}  ${e.from ?? 'none'} -> ${e.to}`),
          ].join('\n'),
        );
      },
    );
}
