import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type OutboundSms,
  type OutboundWhatsApp,
  OutboxTransport,
  PermanentSendError,
  SendError,
  SmsOutboxTransport,
  WhatsAppOutboxTransport,
} from '../src/index.ts';

describe('OutboxTransport', () => {
  let dir: { path: string; remove(): Promise<void> };
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(() => dir.remove());

  const email = (eventId = 'e1') => ({
    eventId,
    project: 'acme',
    raw: Buffer.from('Subject: x\r\n\r\nbody\r\n'),
    from: 'a@b.example',
    to: ['c@d.example'],
  });

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

  it('looks up an earlier send by event id: the first send is found, other events are not', async () => {
    const outbox = new OutboxTransport(join(dir.path, 'out'));
    const since = new Date();
    expect(await outbox.lookup(email('e1'), since)).toEqual({ found: false });
    const first = await outbox.send(email('e1'));
    await outbox.send(email('e1'));
    await outbox.send(email('e2'));
    expect(await outbox.lookup(email('e1'), since)).toEqual({
      found: true,
      providerMessageId: first.providerMessageId,
    });
    expect(await outbox.lookup(email('e3'), since)).toEqual({ found: false });
    // The id is recoverable from the file name.
    const names = await readdir(join(dir.path, 'out'));
    expect(names).toContain(`e1.${first.providerMessageId.replace(/^outbox-/, '')}.eml`);
  });

  it('does not count an envelope without its .eml as a send', async () => {
    const outbox = new OutboxTransport(join(dir.path, 'out'));
    await outbox.send(email('e1'));
    const names = await readdir(join(dir.path, 'out'));
    await rm(join(dir.path, 'out', names.find((n) => n.endsWith('.eml'))!));
    expect(await outbox.lookup(email('e1'), new Date())).toEqual({ found: false });
  });

  it('refuses an event id that cannot name a file, permanently', async () => {
    const outbox = new OutboxTransport(join(dir.path, 'out'));
    const error = await outbox.send(email('../escape')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermanentSendError);
    expect(await readdir(dir.path)).toEqual([]);
  });

  it('completes sends made side by side, each .eml with its envelope and no temp file left', async () => {
    const outbox = new OutboxTransport(join(dir.path, 'out'));
    const sent = await Promise.all(Array.from({ length: 40 }, (_, i) => outbox.send(email(`e${i}`))));
    expect(new Set(sent.map((s) => s.providerMessageId)).size).toBe(40);
    const names = await readdir(join(dir.path, 'out'));
    expect(names.filter((n) => n.endsWith('.eml'))).toHaveLength(40);
    expect(names.filter((n) => n.endsWith('.envelope.json'))).toHaveLength(40);
    expect(names.some((n) => n.endsWith('.tmp'))).toBe(false);
    for (let i = 0; i < 40; i++) {
      expect(await outbox.lookup(email(`e${i}`), new Date())).toEqual({
        found: true,
        providerMessageId: sent[i]!.providerMessageId,
      });
    }
  });

  it('makes its directory again when an operator removed it between sends', async () => {
    const outbox = new OutboxTransport(join(dir.path, 'out'));
    await outbox.send(email('e1'));
    await rm(join(dir.path, 'out'), { recursive: true });
    const again = await outbox.send(email('e2'));
    expect(await outbox.lookup(email('e2'), new Date())).toEqual({
      found: true,
      providerMessageId: again.providerMessageId,
    });
  });

  it('reports a directory it cannot write as a retryable failure that sent nothing', async () => {
    const blocker = join(dir.path, 'not-a-dir');
    await writeFile(blocker, 'x');
    const outbox = new OutboxTransport(join(blocker, 'out'));
    const error = await outbox.send(email('e1')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SendError);
    expect(error).toMatchObject({ retryable: true, reachedProvider: 'no' });
  });
});

describe('SmsOutboxTransport', () => {
  let dir: { path: string; remove(): Promise<void> };
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(() => dir.remove());

  const sms: OutboundSms = {
    eventId: 'e-sms',
    project: 'acme',
    from: '+15005550006',
    to: '+14155550100',
    body: 'Your code is 4711',
    mediaUrls: ['https://cdn.acme.example/a.png'],
  };

  it('writes what would be sent as JSON, one file per send call, and finds it by event id', async () => {
    const outbox = new SmsOutboxTransport(dir.path);
    expect(await outbox.lookup(sms, new Date())).toEqual({ found: false });
    const first = await outbox.send(sms);
    await outbox.send(sms);
    const files = (await readdir(dir.path)).sort();
    expect(files).toHaveLength(2);
    expect(files.every((f) => f.startsWith('e-sms.') && f.endsWith('.sms.json'))).toBe(true);
    const written = JSON.parse(
      await readFile(
        join(dir.path, `e-sms.${first.providerMessageId.replace(/^outbox-/, '')}.sms.json`),
        'utf8',
      ),
    );
    expect(written).toEqual({
      eventId: 'e-sms',
      project: 'acme',
      from: '+15005550006',
      to: '+14155550100',
      body: 'Your code is 4711',
      mediaUrls: ['https://cdn.acme.example/a.png'],
    });
    expect(await outbox.lookup(sms, new Date())).toEqual({
      found: true,
      providerMessageId: first.providerMessageId,
    });
    expect(outbox.name).toBe('outbox');
  });
});

describe('WhatsAppOutboxTransport', () => {
  let dir: { path: string; remove(): Promise<void> };
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(() => dir.remove());

  it('writes the Cloud API message it would post and finds it by event id', async () => {
    const message: OutboundWhatsApp = {
      eventId: 'e-wa',
      project: 'acme',
      to: '+14155550100',
      content: { type: 'template', template: { name: 'order_shipped', language: 'en_US', components: [] } },
    };
    const outbox = new WhatsAppOutboxTransport(dir.path);
    const { providerMessageId } = await outbox.send(message);
    const [file] = await readdir(dir.path);
    expect(file).toBe(`e-wa.${providerMessageId.replace(/^outbox-/, '')}.whatsapp.json`);
    expect(JSON.parse(await readFile(join(dir.path, file!), 'utf8'))).toEqual({
      eventId: 'e-wa',
      project: 'acme',
      message: {
        messaging_product: 'whatsapp',
        recipient_type: 'individual',
        to: '+14155550100',
        type: 'template',
        template: { name: 'order_shipped', language: { code: 'en_US' } },
        biz_opaque_callback_data: 'e-wa',
      },
    });
    expect(await outbox.lookup(message, new Date())).toEqual({ found: true, providerMessageId });
    expect(await outbox.lookup({ ...message, eventId: 'e-other' }, new Date())).toEqual({ found: false });
  });
});
