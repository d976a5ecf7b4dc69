import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Collect = (options: { type: 'minor' | 'major'; execution: 'sync' | 'async' }) => void;

let collect: Collect | undefined;

/**
 * Ask V8 for a young-generation collection. Every chunk a TLS socket reads is a new buffer, freed
 * only when V8 collects its young generation; on a quiet heap that waits until tens of megabytes
 * of such garbage have piled up (V8 triggers on 64 MB of external memory), so a large download
 * would lift the process's peak memory by that much although nothing is kept. A minor collection
 * every few megabytes streamed keeps the peak flat for about a millisecond each.
 */
export function releaseGarbage(): void {
  if (!collect) {
    // The flag only affects contexts created after it is set: a fresh one hands out `gc` without
    // exposing it on this context's global object.
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as Collect;
  }
  collect({ type: 'minor', execution: 'sync' });
}
