import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/index.ts';

function capture() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { log: createLogger({ name: 'test' }, sink), text: () => lines.join('') };
}

describe('createLogger', () => {
  it('never writes message bodies or secrets', () => {
    const { log, text } = capture();
    log.info(
      {
        event: { id: 'e1', data: { mime: 'Subject: secret plans', text: 'BODYTEXT' } },
        job: { data: { html: '<p>BODYHTML</p>' } },
        apiKey: 'KEY123',
        req: { headers: { authorization: 'Bearer TOKEN42' } },
      },
      'archived',
    );
    const out = text();
    expect(out).toContain('"id":"e1"');
    for (const leaked of ['secret plans', 'BODYTEXT', 'BODYHTML', 'KEY123', 'TOKEN42'])
      expect(out).not.toContain(leaked);
  });

  it("censors those keys at any depth, in arrays and in child bindings, and leaves the rest and the caller's object alone", () => {
    const { log, text } = capture();
    const logged = {
      jobId: 'j1',
      batch: { events: [{ id: 'e2', data: { deep: { deeper: { body: 'DEEPBODY', kept: 'k1' } } } }] },
      headers: { 'x-hub-signature-256': 'sha256=SIG', cookie: 'SESSION', accept: 'json' },
    };
    log.child({ redisUrl: 'redis://:PASSWORD@h' }).info(logged, 'batch');
    const out = text();
    for (const leaked of ['DEEPBODY', 'sha256=SIG', 'SESSION', 'PASSWORD']) expect(out).not.toContain(leaked);
    for (const kept of ['"jobId":"j1"', '"id":"e2"', '"kept":"k1"', '"accept":"json"', '"body":"[redacted]"'])
      expect(out).toContain(kept);
    expect(logged.batch.events[0]!.data.deep.deeper.body).toBe('DEEPBODY');
    expect(logged.headers.cookie).toBe('SESSION');
  });

  it('still writes errors through their serializer', () => {
    const { log, text } = capture();
    log.warn({ err: new Error('disk full') }, 'write failed');
    const line = JSON.parse(text()) as { err: { type: string; message: string; stack: string } };
    expect(line.err).toMatchObject({ type: 'Error', message: 'disk full' });
    expect(line.err.stack).toContain('disk full');
  });
});
