import { request } from 'node:http';
import { join } from 'node:path';
import { createLogger, loadConfig } from '@holdfast/core';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type IngestHandle, start } from '../src/index.ts';
import { fixture } from './providers/fixtures.ts';
import { signTwilioRequest, TEST_TWILIO_AUTH_TOKEN, twilioFormBody } from './providers/signers.ts';
import {
  createSnsSigner,
  snsNotification,
  snsSubscriptionConfirmation,
  TEST_TOPIC_ARN,
} from './providers/sns-signer.ts';

/** A topic in another AWS account: SNS signs its messages as validly as ours. */
const FOREIGN_TOPIC_ARN = 'arn:aws:sns:eu-west-1:999999999999:someone-elses-topic';
const sesComplaint = fixture<object>('ses/complaint.json');

describe('ingest webhooks', () => {
  let redis: TestRedis;
  let dir: { path: string; remove(): Promise<void> };
  let ingest: IngestHandle | undefined;
  let logs: string;
  const sns = createSnsSigner();
  const confirmed: string[] = [];

  const startIngest = async (env: Record<string, string> = {}) => {
    const config = loadConfig({
      REDIS_URL: redis.url,
      HOLDFAST_STORE: `local:${join(dir.path, 'store')}`,
      HOLDFAST_SPOOL_DIR: join(dir.path, 'spool'),
      PORT: '0',
      HOLDFAST_METRICS_PORT: '0',
      ...env,
    });
    const logger = createLogger(
      { name: 'ingest-webhooks-test', level: 'info' },
      { write: (s) => (logs += s) },
    );
    ingest = await start(config, {
      logger,
      host: '127.0.0.1',
      snsCertificates: sns.certificates,
      confirmSnsSubscription: async (url) => {
        confirmed.push(url);
      },
    });
    return ingest;
  };
  const spooled = () => ingest!.writer.stats().spool.appends;
  const errorLogs = () => logs.split('\n').filter((line) => line.includes('"level":50'));
  const postSns = async (message: object) => {
    const res = await fetch(`${ingest!.url}/webhooks/ses/acme`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain; charset=UTF-8' },
      body: JSON.stringify(message),
    });
    return { status: res.status, body: (await res.json()) as { error?: { code: string } } };
  };

  beforeEach(async () => {
    redis = await startRedis();
    dir = await tempDir();
    logs = '';
    confirmed.length = 0;
    sns.certificates.calls.length = 0;
  });
  afterEach(async () => {
    await ingest?.close();
    ingest = undefined;
    await redis.stop();
    await dir.remove();
  });

  describe('SES via SNS: only configured topics', () => {
    it('answers 503 HOLDFAST_ERR_PROVIDER_NOT_CONFIGURED while HOLDFAST_SNS_TOPIC_ARNS is unset, confirming and spooling nothing', async () => {
      await startIngest();
      for (const message of [
        sns.sign(snsSubscriptionConfirmation({ topicArn: FOREIGN_TOPIC_ARN })),
        sns.sign(snsNotification({ topicArn: FOREIGN_TOPIC_ARN, message: sesComplaint })),
        sns.sign(snsNotification({ message: sesComplaint })),
      ]) {
        const res = await postSns(message);
        expect(res.status).toBe(503);
        expect(res.body.error?.code).toBe('HOLDFAST_ERR_PROVIDER_NOT_CONFIGURED');
      }
      expect(confirmed).toEqual([]);
      expect(spooled()).toBe(0);
      expect(sns.certificates.calls).toEqual([]);
    });

    it("refuses another topic's correctly signed confirmation and notification (403) before confirming or spooling", async () => {
      await startIngest({ HOLDFAST_SNS_TOPIC_ARNS: TEST_TOPIC_ARN });
      for (const message of [
        sns.sign(snsSubscriptionConfirmation({ topicArn: FOREIGN_TOPIC_ARN })),
        sns.sign(snsNotification({ topicArn: FOREIGN_TOPIC_ARN, message: sesComplaint })),
      ]) {
        const res = await postSns(message);
        expect(res.status).toBe(403);
        expect(res.body.error?.code).toBe('HOLDFAST_ERR_TOPIC_NOT_ALLOWED');
      }
      expect(confirmed).toEqual([]);
      expect(spooled()).toBe(0);

      // The configured topic still gets through both ways.
      const confirmation = sns.sign(snsSubscriptionConfirmation({ topicArn: TEST_TOPIC_ARN }));
      expect((await postSns(confirmation)).status).toBe(200);
      expect(confirmed).toEqual([confirmation.SubscribeURL]);
      expect((await postSns(sns.sign(snsNotification({ message: sesComplaint })))).status).toBe(200);
      expect(spooled()).toBe(2);
    });
  });

  describe('Twilio without HOLDFAST_PUBLIC_BASE_URL', () => {
    const params = { MessageSid: 'SM0123', AccountSid: 'AC0123', From: '+15005550006', To: '+15005550001' };
    /** node:http, not fetch: fetch will not send a Host header of its own choosing. */
    const postWithHost = (host: string) => {
      const body = twilioFormBody(params);
      const url = new URL(`${ingest!.url}/webhooks/twilio/acme/inbound`);
      return new Promise<{ status: number; body: { error?: { code: string } } }>((resolve, reject) => {
        const req = request(
          {
            host: url.hostname,
            port: url.port,
            path: url.pathname,
            method: 'POST',
            headers: {
              host,
              'content-type': 'application/x-www-form-urlencoded',
              'x-twilio-signature': signTwilioRequest(`http://${host}${url.pathname}`, params),
            },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (text += chunk));
            res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    };

    it('refuses a Host header that makes no URL as a 400 validation error, logging no error', async () => {
      await startIngest({ HOLDFAST_TWILIO_AUTH_TOKEN: TEST_TWILIO_AUTH_TOKEN });
      const res = await postWithHost('a b');
      expect(res.status).toBe(400);
      expect(res.body.error?.code).toBe('HOLDFAST_ERR_VALIDATION');
      expect(errorLogs()).toEqual([]);
      expect(spooled()).toBe(0);
    });
  });
});
