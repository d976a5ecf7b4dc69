import type {
  ObjectHead,
  ObjectListEntry,
  ObjectStore,
  ObjectVersionOptions,
  ObjectVersionSummary,
  PutObjectInput,
  PutObjectResult,
} from './object-store.ts';

/**
 * What runs each store call: a circuit breaker (`Breaker` of `@holdfast/producer` fits), which
 * may refuse the call at once with an error of its own.
 */
export interface StoreCallGuard {
  fire<T>(call: () => Promise<T>): Promise<T>;
}

/**
 * Whether an error says the store itself is failing (unreachable, 5xx, I/O errors): what a
 * breaker around a store counts. Refusals of one request (the object exists, is retained or
 * held, the input is invalid, access is denied) do not.
 */
export function isStoreOutage(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'HOLDFAST_ERR_STORE_UNAVAILABLE';
}

/**
 * The same store with every call routed through `guard`: puts, heads, gets, retention and hold
 * changes, deletes, and each step of a listing. `close` is the inner store's.
 */
export function guardObjectStore(store: ObjectStore, guard: StoreCallGuard): ObjectStore {
  return {
    description: store.description,
    put: (input: PutObjectInput): Promise<PutObjectResult> => guard.fire(() => store.put(input)),
    head: (key: string, opts?: ObjectVersionOptions): Promise<ObjectHead | undefined> =>
      guard.fire(() => store.head(key, opts)),
    get: (key: string, opts?: ObjectVersionOptions) => guard.fire(() => store.get(key, opts)),
    list: (prefix: string): AsyncIterable<ObjectListEntry> => guarded(() => store.list(prefix), guard),
    listVersions: (prefix: string): AsyncIterable<ObjectVersionSummary> =>
      guarded(() => store.listVersions(prefix), guard),
    extendRetention: (key: string, versionId: string, until: Date) =>
      guard.fire(() => store.extendRetention(key, versionId, until)),
    setLegalHold: (key: string, versionId: string, on: boolean) =>
      guard.fire(() => store.setLegalHold(key, versionId, on)),
    deleteVersion: (key: string, versionId: string) => guard.fire(() => store.deleteVersion(key, versionId)),
    close: () => store.close(),
  };
}

/** A listing whose every step (the pages it fetches) goes through the guard. */
async function* guarded<T>(open: () => AsyncIterable<T>, guard: StoreCallGuard): AsyncGenerator<T> {
  const iterator = open()[Symbol.asyncIterator]();
  let done = false;
  try {
    for (;;) {
      const step = await guard.fire(() => iterator.next());
      if (step.done) {
        done = true;
        return;
      }
      yield step.value;
    }
  } finally {
    // A consumer that stops early (or a refused step) releases the inner listing.
    if (!done) await iterator.return?.();
  }
}
