import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Latency, type LatencySummary } from './histogram.ts';

/**
 * The disk's own answer time for what an ack waits on: one writer appending a record of
 * `recordBytes` and calling `fdatasync`, back to back, for `durationS`. No acknowledgement that
 * needs an fsync can beat its percentiles; a stall of the disk shows here as it shows in the ack.
 */
export async function fsyncFloor(
  dir: string,
  durationS: number,
  recordBytes = 1300,
): Promise<LatencySummary> {
  const path = join(dir, `fsync-floor-${process.pid}.log`);
  const file = await open(path, 'wx');
  const record = Buffer.alloc(recordBytes, 0x61);
  const latency = new Latency();
  try {
    const end = Date.now() + durationS * 1000;
    while (Date.now() < end) {
      await latency.time(async () => {
        await file.write(record);
        await file.datasync();
      });
    }
  } finally {
    await file.close();
    await rm(path, { force: true });
  }
  return latency.summary();
}
