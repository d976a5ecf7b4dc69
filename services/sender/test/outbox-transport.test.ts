import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OutboxTransport } from '../src/index.ts';

describe('OutboxTransport', () => {
  let dir: { path: string; remove(): Promise<void> };
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(() => dir.remove());

  it('writes the exact bytes and the envelope, one file per send call', async () => {
    const outbox = new OutboxTransport(join(dir.path, 'out'));
    const raw = Buffer.from('Subject: x\r\n\r\nbody\r\n');
    const first = await outbox.send({
      eventId: 'e1',
      project: 'acme',
      raw,
      from: 'a@b.example',
      to: ['c@d.example'],
    });
    const second = await outbox.send({
      eventId: 'e1',
      project: 'acme',
      raw,
      from: 'a@b.example',
      to: ['c@d.example'],
    });
    expect(first.providerMessageId).not.toBe(second.providerMessageId);
    const files = (await readdir(join(dir.path, 'out'))).sort();
    expect(files.filter((f) => f.endsWith('.eml'))).toHaveLength(2);
    expect(files.some((f) => f.endsWith('.tmp'))).toBe(false);
    const eml = files.find((f) => f.endsWith('.eml'))!;
    expect((await readFile(join(dir.path, 'out', eml))).equals(raw)).toBe(true);
    const envelope = JSON.parse(
      await readFile(join(dir.path, 'out', eml.replace(/\.eml$/, '.envelope.json')), 'utf8'),
    );
    expect(envelope).toEqual({ from: 'a@b.example', to: ['c@d.example'] });
  });
});
