import { ObjectConflictError } from './errors.ts';
import type { ObjectHead, ObjectStore, PutObjectInput } from './object-store.ts';

export type PutOnceResult =
  | { versionId: string; created: true }
  /** `existing` is the version an earlier run left, as it is now (held, extended or not). */
  | { versionId: string; created: false; existing: ObjectHead };

/**
 * Write an object exactly once: a conditional put, where finding the same bytes already at the
 * key (an earlier run that crashed after writing) counts as written. Safe to repeat after a
 * crash anywhere; a different object at the key is an ObjectConflictError.
 */
export async function putOnce(store: ObjectStore, input: PutObjectInput): Promise<PutOnceResult> {
  try {
    const written = await store.put({ ...input, ifNoneMatch: true });
    return { versionId: written.versionId, created: true };
  } catch (error) {
    if ((error as { code?: string }).code !== 'HOLDFAST_ERR_OBJECT_EXISTS') throw error;
    const existing = await store.head(input.key);
    if (!existing) throw error;
    if (existing.sha256 !== input.sha256)
      throw new ObjectConflictError(input.key, input.sha256, existing.sha256);
    return { versionId: existing.versionId, created: false, existing };
  }
}
