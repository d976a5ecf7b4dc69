import { addDuration, durationDays, type RetentionDuration, type RetentionPolicy } from '@holdfast/core';
import { InfraConfigError } from './errors.ts';

/** One bucket per record class; its default retention covers the longest of its categories. */
export interface RecordClass {
  /** Bucket name segment: lowercase letters, digits and hyphens. */
  name: string;
  /** Retention policy categories (`@holdfast/core` policy names) whose records live in this bucket. */
  categories: readonly string[];
  /** Days after which versions move to Glacier Deep Archive. @defaultValue the app's `deepArchiveAfterDays` */
  deepArchiveAfterDays?: number;
}

export const DEFAULT_RECORD_CLASSES: readonly RecordClass[] = Object.freeze([
  {
    name: 'messages',
    categories: [
      'email-transactional',
      'email-marketing',
      'sms-transactional',
      'sms-marketing',
      'whatsapp-transactional',
      'whatsapp-marketing',
    ],
  },
  { name: 'transactions', categories: ['financial-transaction'] },
  { name: 'audit-log', categories: ['audit-log', 'audit-log-admin'] },
  { name: 'contracts', categories: ['contract'] },
]);

const DAY_MS = 86_400_000;
// Four years of start dates include every month length and a leap day (2000 is a leap year).
const PROBE_START = Date.UTC(2000, 0, 1);
const PROBE_DAYS = 4 * 365 + 1;

/**
 * The longest a duration can be in whole days, over every start date, in the archiver's own calendar
 * arithmetic (`addDuration`). `durationDays` counts a year as 365 days, which is up to two days short
 * of seven calendar years; a default retention must never end before the one the archiver computes.
 */
export function calendarSafeDays(duration: RetentionDuration): number {
  let longest = durationDays(duration);
  for (let i = 0; i < PROBE_DAYS; i++) {
    const start = new Date(PROBE_START + i * DAY_MS);
    const days = Math.ceil((addDuration(start, duration).getTime() - start.getTime()) / DAY_MS);
    if (days > longest) longest = days;
  }
  return longest;
}

/**
 * Default retention (days, COMPLIANCE) for a record class bucket: the longest of its categories in
 * `policy`. A writer that forgets explicit retention still gets the strictest period of the class.
 * Throws if a category is not in the policy, so infrastructure and code cannot disagree silently.
 */
export function defaultRetentionDays(policy: RetentionPolicy, recordClass: RecordClass): number {
  if (recordClass.categories.length === 0) {
    throw new InfraConfigError(`recordClasses.${recordClass.name}`, 'names no retention categories');
  }
  return Math.max(
    ...recordClass.categories.map((category) => {
      if (!policy.has(category)) {
        throw new InfraConfigError(
          `recordClasses.${recordClass.name}`,
          `category "${category}" is not in the retention policy (${policy.source})`,
        );
      }
      return calendarSafeDays(policy.duration(category));
    }),
  );
}
