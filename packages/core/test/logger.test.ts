import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/index.ts';

describe('createLogger', () => {
  it('never writes message bodies or secrets', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const log = createLogger({ name: 'test' }, sink);
    log.info(
      {
        event: { id: 'e1', data: { mime: 'Subject: secret plans', text: 'BODYTEXT' } },
        job: { data: { html: '<p>BODYHTML</p>' } },
        apiKey: 'KEY123',
        req: { headers: { authorization: 'Bearer TOKEN42' } },
      },
      'archived',
    );
    const out = lines.join('');
    expect(out).toContain('"id":"e1"');
    for (const leaked of ['secret plans', 'BODYTEXT', 'BODYHTML', 'KEY123', 'TOKEN42'])
      expect(out).not.toContain(leaked);
  });
});
