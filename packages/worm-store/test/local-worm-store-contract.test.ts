import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalWormStore } from '../src/index.ts';
import { objectStoreContract } from './object-store-contract.ts';

objectStoreContract(
  'LocalWormStore',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'holdfast-worm-'));
    let now = Date.parse('2031-03-01T09:00:00.000Z');
    const clock = () => new Date(now);
    const store = await LocalWormStore.open({ dir, clock });
    return {
      store,
      now: clock,
      advance: (ms) => {
        now += ms;
      },
      prefix: 'contract/',
      close: async () => {
        await store.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
  { canAdvanceClock: true },
);
