import { describe, expect, it } from 'vitest';
import { type SpoolStatus, type StatusReport, warningsOf } from '../src/status-command.ts';

/** A report of a healthy fleet whose one spool's oldest event was accepted `ageMs` before `at`. */
function reportWithSpoolAged(ageMs: number): StatusReport {
  const at = new Date('2026-11-22T12:00:00.000Z');
  const spool: SpoolStatus = {
    service: 'sender',
    host: 'sender-1',
    pid: 7,
    backlog: 3,
    maxBacklog: 250_000,
    oldestUnackedAt: new Date(at.getTime() - ageMs).toISOString(),
    updatedAt: at.toISOString(),
    oldestAgeSeconds: Math.round(ageMs / 1000),
  };
  return {
    at: at.toISOString(),
    redis: {
      address: '127.0.0.1:6380',
      version: '7.0.0',
      maxmemoryPolicy: 'noeviction',
      appendonly: true,
      save: '',
      persistence: 'aof',
      aofLastWriteStatus: 'ok',
      rdbLastBgsaveStatus: 'ok',
    },
    queues: [],
    spools: [spool],
    silentSpools: [],
    breakers: [],
    staleBreakers: [],
    pauses: [],
    uncertainSends: { count: 0, latest: [] },
    warnings: [],
  };
}

describe('warningsOf', () => {
  it('warns about a spool backlog older than the threshold by its timestamps, not the rounded seconds it shows', () => {
    // 1.4 s shows as "1 s", and is still older than a 1 s threshold.
    expect(warningsOf(reportWithSpoolAged(1_400), 1_000).map((w) => w.kind)).toEqual(['spool-backlog']);
    expect(warningsOf(reportWithSpoolAged(900), 1_000)).toEqual([]);
  });
});
