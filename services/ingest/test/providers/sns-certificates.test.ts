import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CertificateFetchError,
  CertificateUrlRejectedError,
  httpsCertificateSource,
  verifySnsMessage,
} from '../../src/providers/index.ts';
import { fixture } from './fixtures.ts';
import { type LoopbackSns, startLoopbackSns } from './loopback-sns.ts';
import { createSnsSigner, snsNotification, TEST_CERT_URL } from './sns-signer.ts';

const signer = createSnsSigner();
const certPath = new URL(TEST_CERT_URL).pathname;

describe('httpsCertificateSource: which URLs it will fetch', () => {
  it('refuses every URL that is not https://sns.<region>.amazonaws.com[.cn]/….pem, never calling fetch', async () => {
    const fetched: string[] = [];
    const recordingFetch: typeof fetch = async (input) => {
      fetched.push(String(input));
      return new Response(signer.certificatePem);
    };
    const source = httpsCertificateSource({ fetch: recordingFetch });
    for (const url of [
      'https://evil.example/SimpleNotificationService-1.pem',
      'http://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem',
      'https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-1.pem',
      'https://sns.us-east-1.amazonaws.com@evil.example/SimpleNotificationService-1.pem',
      'https://sns.us-east-1.amazonaws.com:444/SimpleNotificationService-1.pem',
      'https://sqs.us-east-1.amazonaws.com/SimpleNotificationService-1.pem',
      'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.txt',
      'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem#frag',
      'https://127.0.0.1/SimpleNotificationService-1.pem',
      'https://[::1]/SimpleNotificationService-1.pem',
      'https://sns..amazonaws.com/SimpleNotificationService-1.pem',
      'ftp://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem',
      'not a url',
    ]) {
      await expect(source.get(url), url).rejects.toBeInstanceOf(CertificateUrlRejectedError);
    }
    expect(fetched).toEqual([]);
  });

  it('validates its options once, at construction', () => {
    expect(() => httpsCertificateSource({ timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => httpsCertificateSource({ maxBytes: -1 })).toThrow(/maxBytes/);
  });
});

describe('httpsCertificateSource against an SNS stand-in on loopback', () => {
  let sns: LoopbackSns;
  beforeEach(async () => {
    sns = await startLoopbackSns();
  });
  afterEach(async () => {
    await sns.close();
  });

  it('fetches a certificate once and serves it from memory afterwards', async () => {
    sns.handle((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/x-x509-ca-cert' }).end(signer.certificatePem),
    );
    const source = httpsCertificateSource({ fetch: sns.fetch });
    const [a, b] = await Promise.all([source.get(TEST_CERT_URL), source.get(TEST_CERT_URL)]);
    expect(a).toBe(signer.certificatePem);
    expect(b).toBe(signer.certificatePem);
    expect(await source.get(TEST_CERT_URL)).toBe(signer.certificatePem);
    expect(sns.requests).toEqual([`GET ${certPath}`]);
  });

  it('verifies a signed SES notification end to end with the fetched certificate', async () => {
    sns.handle((_req, res) => res.writeHead(200).end(signer.certificatePem));
    const message = signer.sign(snsNotification({ message: fixture('ses/bounce-permanent.json') }));
    const certificates = httpsCertificateSource({ fetch: sns.fetch });
    await expect(verifySnsMessage(message, { certificates })).resolves.toMatchObject({
      MessageId: message.MessageId,
    });
  });

  it('does not cache failures: an error answer is retried on the next message', async () => {
    sns.handle((_req, res) => res.writeHead(503).end('busy'));
    const source = httpsCertificateSource({ fetch: sns.fetch });
    await expect(source.get(TEST_CERT_URL)).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_CERTIFICATE_FETCH',
      message: expect.stringMatching(/HTTP 503/),
    });
    sns.handle((_req, res) => res.writeHead(200).end(signer.certificatePem));
    await expect(source.get(TEST_CERT_URL)).resolves.toBe(signer.certificatePem);
    expect(sns.requests).toHaveLength(2);
  });

  it('refuses responses over the size cap, declared or streamed', async () => {
    const big = `${signer.certificatePem}${'x'.repeat(8192)}`;
    sns.handle((_req, res) => res.writeHead(200).end(big));
    const source = httpsCertificateSource({ fetch: sns.fetch, maxBytes: 4096 });
    await expect(source.get(TEST_CERT_URL)).rejects.toMatchObject({
      message: expect.stringMatching(/larger than 4096/),
    });
    sns.handle((_req, res) => {
      res.writeHead(200); // chunked: no content-length to refuse early
      res.write(big.slice(0, 3000));
      res.end(big.slice(3000));
    });
    await expect(source.get(TEST_CERT_URL)).rejects.toMatchObject({
      message: expect.stringMatching(/larger than 4096/),
    });
  });

  it('refuses a response that is not a PEM certificate', async () => {
    sns.handle((_req, res) => res.writeHead(200).end('<html>maintenance</html>'));
    await expect(httpsCertificateSource({ fetch: sns.fetch }).get(TEST_CERT_URL)).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_CERTIFICATE_FETCH',
      message: expect.stringMatching(/not a PEM certificate/),
    });
  });

  it('does not follow redirects (they could leave the SNS host)', async () => {
    sns.handle((_req, res) => res.writeHead(302, { location: 'http://127.0.0.1:9/elsewhere.pem' }).end());
    await expect(httpsCertificateSource({ fetch: sns.fetch }).get(TEST_CERT_URL)).rejects.toBeInstanceOf(
      CertificateFetchError,
    );
    expect(sns.requests).toEqual([`GET ${certPath}`]);
  });

  it('gives up on a server that never answers', async () => {
    sns.handle(() => {
      // never respond
    });
    await expect(
      httpsCertificateSource({ fetch: sns.fetch, timeoutMs: 200 }).get(TEST_CERT_URL),
    ).rejects.toBeInstanceOf(CertificateFetchError);
  });
});
