import { type ArchiveJobResult, type EventEnvelope, newEvent, type RetentionPolicy } from '@holdfast/core';
import type { ObjectStore } from '@holdfast/worm-store';
import { archiveEvent } from './archive-event.ts';

/** The retention category of the platform's own administrative record (holds, disposals, policy changes). */
export const OPERATOR_CATEGORY = 'audit-log-admin';

/** Where operator events are archived under `policy`: their own category, or `default` without it. */
export function operatorCategoryOf(policy: RetentionPolicy): string {
  return policy.has(OPERATOR_CATEGORY) ? OPERATOR_CATEGORY : 'default';
}

export interface OperatorAction {
  /** e.g. `hold.placed`, `hold.released`, `retention.extended`, `disposal.executed`, `policy.changed`. */
  type: string;
  /** Who did it: a person or a service identity, recorded on the event. */
  actor: string;
  /** What it is about (a matter, a subject, a policy source). */
  subject: string;
  /** Why, and exactly what (manifests with keys, version ids and hashes). */
  data: Record<string, unknown>;
  /** The project the action belongs to. @defaultValue 'holdfast' */
  project?: string;
  /**
   * Write the record under a legal hold: one the archive must keep for as long as something
   * depends on it (a matter's placement, while the matter is open), whatever its retention.
   * @defaultValue false
   */
  legalHold?: boolean;
}

/**
 * Write an operator action to the archive, under lock, before the caller reports success or
 * goes on to act (a destruction log entry is written before the delete). Admins cannot change
 * holds, retention or policy silently: each change is itself a WORM record.
 */
export async function archiveOperatorAction(
  store: ObjectStore,
  policy: RetentionPolicy,
  action: OperatorAction,
): Promise<{ event: EventEnvelope; archived: ArchiveJobResult }> {
  const event = newEvent({
    type: action.type,
    occurredAt: new Date(),
    project: action.project ?? 'holdfast',
    channel: 'record',
    direction: 'internal',
    subject: action.subject,
    category: operatorCategoryOf(policy),
    data: { actor: action.actor, ...action.data },
  });
  const archived = await archiveEvent(store, policy, event, { legalHold: action.legalHold === true });
  return { event, archived };
}
