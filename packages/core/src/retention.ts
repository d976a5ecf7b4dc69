import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { RetentionPolicyError } from './errors.ts';
import { canonicalJson, sha256Hex } from './hashing.ts';
import { keySegment } from './naming.ts';
import { zodIssues } from './zod-issues.ts';

/** A calendar duration. Months and years are calendar units, so 7y from 2024-02-29 is 2031-03-01. */
export interface RetentionDuration {
  years: number;
  months: number;
  days: number;
  /** The text it was parsed from, for messages and audit events. */
  text: string;
}

const shortForm = /^(\d{1,4})([dwmy])$/;
const isoForm = /^P(?:(\d{1,4})Y)?(?:(\d{1,4})M)?(?:(\d{1,4})W)?(?:(\d{1,5})D)?$/;

/** Parse `7y`, `18m`, `6w`, `90d` or an ISO 8601 date duration (`P7Y`, `P1Y6M`, `P90D`). */
export function parseDuration(text: string): RetentionDuration {
  const short = shortForm.exec(text);
  if (short) {
    const n = Number(short[1]);
    const unit = short[2];
    return {
      years: unit === 'y' ? n : 0,
      months: unit === 'm' ? n : 0,
      days: unit === 'd' ? n : unit === 'w' ? n * 7 : 0,
      text,
    };
  }
  const iso = isoForm.exec(text);
  if (iso && text !== 'P') {
    return {
      years: Number(iso[1] ?? 0),
      months: Number(iso[2] ?? 0),
      days: Number(iso[3] ?? 0) * 7 + Number(iso[4] ?? 0),
      text,
    };
  }
  throw new RetentionPolicyError(
    `invalid retention duration "${text}": use a count and a unit (90d, 6w, 18m, 7y) or ISO 8601 (P7Y)`,
  );
}

/** `from` plus `duration`, in UTC calendar arithmetic. Overflowing days roll forward (never shorter). */
export function addDuration(from: Date, duration: RetentionDuration): Date {
  const out = new Date(from.getTime());
  out.setUTCFullYear(out.getUTCFullYear() + duration.years, out.getUTCMonth() + duration.months);
  out.setUTCDate(out.getUTCDate() + duration.days);
  return out;
}

/** Approximate length in days, used only to compare against a bucket's default retention. */
export function durationDays(d: RetentionDuration): number {
  return d.years * 365 + d.months * 30 + d.days;
}

/**
 * A category whose retention is extended when something happens to its subject: written with
 * `duration` from the record's own date, then, when an event of type `extendOn` with the same
 * subject (and project) is archived, extended to that event's `occurredAt` + `extendBy`.
 * e.g. a contract is kept for the life of the relationship, then 7 more years.
 */
export interface TriggeredCategoryRule {
  duration: string;
  extendOn: string;
  extendBy: string;
}

/** What a policy file may say about a category: a duration, or a duration with a trigger. */
export type CategoryRule = string | { duration: string; extendOn?: string; extendBy?: string };

/** A category's trigger, parsed. */
export interface RetentionTrigger {
  category: string;
  /** The event type that ends the open-ended period, e.g. `relationship.ended`. */
  extendOn: string;
  /** Counted from the trigger event's own date. */
  extendBy: RetentionDuration;
}

export const DEFAULT_RETENTION_CATEGORIES: Readonly<Record<string, CategoryRule>> = Object.freeze({
  default: '7y',
  'email-transactional': '7y',
  'email-marketing': '3y',
  'sms-transactional': '7y',
  'sms-marketing': '3y',
  'whatsapp-transactional': '7y',
  'whatsapp-marketing': '3y',
  'financial-transaction': '7y',
  'audit-log': '3y',
  'audit-log-admin': '7y',
  // Life of the relationship + 7y: written with 7y from the contract's date (a floor while the
  // relationship lasts), extended when `relationship.ended` is recorded for the subject.
  contract: Object.freeze({ duration: '7y', extendOn: 'relationship.ended', extendBy: '7y' }),
});

const eventTypeName = z
  .string()
  .regex(/^[a-z]+(\.[a-z-]+)+$/, 'must be an event type like "relationship.ended"');

const ruleObject = z
  .strictObject({
    duration: z.string({ error: 'required: the retention from the record\'s own date, e.g. "7y"' }),
    extendOn: eventTypeName.optional(),
    extendBy: z.string().optional(),
  })
  .refine((r) => (r.extendOn === undefined) === (r.extendBy === undefined), {
    message: 'extendOn and extendBy go together (e.g. extendOn: relationship.ended, extendBy: 7y)',
  });

const policyFile = z.strictObject({
  categories: z
    .record(keySegment, z.unknown())
    .refine((c) => Object.keys(c).length > 0, 'needs at least one category'),
});

function parseRule(
  name: string,
  rule: unknown,
  source: string,
): { duration: RetentionDuration; trigger?: RetentionTrigger } {
  const fail = (detail: string): never => {
    throw new RetentionPolicyError(`${source}: category "${name}": ${detail}`);
  };
  const duration = (text: string): RetentionDuration => {
    try {
      return parseDuration(text);
    } catch (error) {
      return fail((error as Error).message);
    }
  };
  if (typeof rule === 'string') return { duration: duration(rule) };
  if (typeof rule !== 'object' || rule === null || Array.isArray(rule))
    return fail(
      `must be a duration ("7y") or { duration, extendOn, extendBy }, not ${rule === null ? 'null' : Array.isArray(rule) ? 'a list' : typeof rule}`,
    );
  const parsed = ruleObject.safeParse(rule);
  if (!parsed.success)
    return fail(
      zodIssues(parsed.error)
        .map((i) => (i.path ? `${i.path}: ${i.message}` : i.message))
        .join('; '),
    );
  const r = parsed.data;
  return {
    duration: duration(r.duration),
    ...(r.extendOn && r.extendBy
      ? { trigger: { category: name, extendOn: r.extendOn, extendBy: duration(r.extendBy) } }
      : {}),
  };
}

/** The canonical form of a policy's rules: what a policy change event records (no file path). */
export interface RetentionPolicyDescription {
  categories: Record<string, { duration: string; extendOn?: string; extendBy?: string }>;
}

export class RetentionPolicy {
  readonly categories: ReadonlyMap<string, RetentionDuration>;
  /** Triggered categories, by category name. */
  readonly triggers: ReadonlyMap<string, RetentionTrigger>;
  readonly source: string;

  constructor(categories: Readonly<Record<string, CategoryRule>>, source: string) {
    const parsed = new Map<string, RetentionDuration>();
    const triggers = new Map<string, RetentionTrigger>();
    for (const [name, rule] of Object.entries(categories)) {
      const { duration, trigger } = parseRule(name, rule, source);
      parsed.set(name, duration);
      if (trigger) triggers.set(name, Object.freeze(trigger));
    }
    this.categories = parsed;
    this.triggers = triggers;
    this.source = source;
    Object.freeze(this);
  }

  has(category: string): boolean {
    return this.categories.has(category);
  }

  duration(category: string): RetentionDuration {
    const d = this.categories.get(category);
    if (!d) {
      throw new RetentionPolicyError(
        `unknown retention category "${category}" (policy ${this.source} has: ${[...this.categories.keys()].join(', ')})`,
      );
    }
    return d;
  }

  /**
   * Retain-until for a record of `category` whose own date is `recordDate` (not the upload time).
   * For a triggered category this is the initial retention; the trigger only ever extends it.
   */
  retainUntil(category: string, recordDate: Date | string): Date {
    return addDuration(validDate(recordDate, 'record date'), this.duration(category));
  }

  /** The triggered categories an event of `eventType` extends (usually none). */
  triggersFor(eventType: string): RetentionTrigger[] {
    return [...this.triggers.values()].filter((t) => t.extendOn === eventType);
  }

  /** The trigger of `category`, if it has one. */
  triggerOf(category: string): RetentionTrigger | undefined {
    return this.triggers.get(category);
  }

  /** Retain-until for a triggered category once its trigger event, dated `triggerDate`, happened. */
  extendedUntil(category: string, triggerDate: Date | string): Date {
    const trigger = this.triggers.get(category);
    if (!trigger)
      throw new RetentionPolicyError(`retention category "${category}" has no trigger in ${this.source}`);
    return addDuration(validDate(triggerDate, 'trigger date'), trigger.extendBy);
  }

  /** The shortest category, in days: a bucket's default retention must be at least this. */
  minimumDays(): number {
    return Math.min(...[...this.categories.values()].map(durationDays));
  }

  /** The rules, in a canonical form independent of the file's layout, path and key order. */
  describe(): RetentionPolicyDescription {
    const categories: RetentionPolicyDescription['categories'] = {};
    for (const name of [...this.categories.keys()].sort()) {
      const trigger = this.triggers.get(name);
      categories[name] = {
        duration: this.categories.get(name)!.text,
        ...(trigger ? { extendOn: trigger.extendOn, extendBy: trigger.extendBy.text } : {}),
      };
    }
    return { categories };
  }

  /** SHA-256 of the canonical JSON of `describe()`: equal rules, equal fingerprint. */
  fingerprint(): string {
    return sha256Hex(canonicalJson(this.describe()));
  }

  toJSON(): RetentionPolicyDescription & { source: string; sha256: string } {
    return { source: this.source, sha256: this.fingerprint(), ...this.describe() };
  }

  static defaults(): RetentionPolicy {
    return new RetentionPolicy(DEFAULT_RETENTION_CATEGORIES, 'built-in defaults');
  }

  /**
   * Load a policy file (`.json`, `.yaml` or `.yml`):
   * `{ categories: { <name>: <duration> | { duration, extendOn, extendBy } } }`.
   */
  /** The policy in force: the file `HOLDFAST_RETENTION_POLICY` names, else the built-in defaults. */
  static async fromConfig(config: { retentionPolicyPath: string | undefined }): Promise<RetentionPolicy> {
    return config.retentionPolicyPath
      ? RetentionPolicy.load(config.retentionPolicyPath)
      : RetentionPolicy.defaults();
  }

  static async load(path: string): Promise<RetentionPolicy> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      throw new RetentionPolicyError(`cannot read retention policy ${path}: ${(error as Error).message}`);
    }
    let raw: unknown;
    try {
      raw = extname(path) === '.json' ? JSON.parse(text) : parseYaml(text);
    } catch (error) {
      throw new RetentionPolicyError(
        `retention policy ${path} is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(error as Error).message}`,
      );
    }
    const parsed = policyFile.safeParse(raw);
    if (!parsed.success) {
      const detail = zodIssues(parsed.error)
        .map((i) => `${i.path || '(root)'}: ${i.message}`)
        .join('; ');
      throw new RetentionPolicyError(`retention policy ${path} is invalid: ${detail}`);
    }
    return new RetentionPolicy(parsed.data.categories as Record<string, CategoryRule>, path);
  }
}

function validDate(value: Date | string, what: string): Date {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) throw new RetentionPolicyError(`invalid ${what} "${String(value)}"`);
  return date;
}
