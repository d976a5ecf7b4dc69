import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { RetentionPolicyError } from './errors.ts';
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

export const DEFAULT_RETENTION_CATEGORIES: Readonly<Record<string, string>> = Object.freeze({
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
  contract: '7y',
});

const policyFile = z.strictObject({
  categories: z
    .record(keySegment, z.string())
    .refine((c) => Object.keys(c).length > 0, 'needs at least one category'),
});

export class RetentionPolicy {
  readonly categories: ReadonlyMap<string, RetentionDuration>;
  readonly source: string;

  constructor(categories: Readonly<Record<string, string>>, source: string) {
    const parsed = new Map<string, RetentionDuration>();
    for (const [name, text] of Object.entries(categories)) {
      try {
        parsed.set(name, parseDuration(text));
      } catch (error) {
        throw new RetentionPolicyError(`${source}: category "${name}": ${(error as Error).message}`);
      }
    }
    this.categories = parsed;
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

  /** Retain-until for a record of `category` whose own date is `recordDate` (not the upload time). */
  retainUntil(category: string, recordDate: Date | string): Date {
    const from = recordDate instanceof Date ? recordDate : new Date(recordDate);
    if (Number.isNaN(from.getTime()))
      throw new RetentionPolicyError(`invalid record date "${String(recordDate)}"`);
    return addDuration(from, this.duration(category));
  }

  /** The shortest category, in days: a bucket's default retention must be at least this. */
  minimumDays(): number {
    return Math.min(...[...this.categories.values()].map(durationDays));
  }

  static defaults(): RetentionPolicy {
    return new RetentionPolicy(DEFAULT_RETENTION_CATEGORIES, 'built-in defaults');
  }

  /** Load a policy file (`.json`, `.yaml` or `.yml`): `{ categories: { <name>: <duration> } }`. */
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
    return new RetentionPolicy(parsed.data.categories, path);
  }
}
