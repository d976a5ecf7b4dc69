import { type S3Server, startS3Server } from '@holdfast/testkit/s3-server';
import { S3WormStore } from '@holdfast/worm-store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFleet, type TestFleet } from '../support/fleet.ts';
import { readOutbox } from '../support/outbox.ts';
import { sleep, waitFor } from '../support/wait-for.ts';

describe('fail-closed email while the S3 store is failing', () => {
  let s3: S3Server;
  let store: S3WormStore;
  let fleet: TestFleet;
  beforeEach(async () => {
    s3 = await startS3Server();
    store = await S3WormStore.open({
      bucket: s3.bucket,
      endpoint: s3.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
    });
    fleet = await startFleet({ store });
  });
  afterEach(async () => {
    await fleet.close();
    await store.close();
    await s3.close();
  });

  it('sends nothing while every put fails, then archives under lock and sends exactly once', async () => {
    await fleet.startArchiver();
    await fleet.startSender();
    const producer = await fleet.producer();
    s3.setUnavailable(true);

    const { id, archiveKey } = await producer.sendEmail({
      from: 'a@acme.example',
      to: 'b@x.example',
      subject: 'outage',
      text: 'hello',
    });
    // The archive job keeps failing and retrying; the send never starts.
    await waitFor(
      'failed archive attempts',
      async () => ((await fleet.queue('archive').getJob(id))?.attemptsMade ?? 0) >= 2,
    );
    expect(await readOutbox(fleet.outboxDir)).toHaveLength(0);
    expect(await fleet.queue('send-email').getJobState(id)).toBe('waiting-children');
    // The store refused them (the first read, of the legal-hold record a fresh Redis needs, or a put).
    expect(s3.requests.some((r) => r.status === 503)).toBe(true);

    s3.setUnavailable(false);
    await waitFor(
      'the email sent after the store recovered',
      async () => (await readOutbox(fleet.outboxDir)).length > 0,
      30_000,
    );
    await sleep(1_000);
    const sent = await readOutbox(fleet.outboxDir);
    expect(sent).toHaveLength(1);
    const head = await store.head(archiveKey);
    expect(head).toMatchObject({ mode: 'COMPLIANCE', sha256: expect.any(String) });
    expect(head!.lastModified.getTime()).toBeLessThanOrEqual(sent[0]!.writtenAt.getTime());
    const puts = s3.requests.filter(
      (r) => r.operation === 'PutObject' && r.key === archiveKey && r.status === 200,
    );
    expect(puts).toHaveLength(1);
    expect(puts[0]!.headers['x-amz-object-lock-mode']).toBe('COMPLIANCE');
  });
});
