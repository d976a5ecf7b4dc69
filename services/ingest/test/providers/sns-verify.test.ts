import { describe, expect, it } from 'vitest';
import {
  CertificateUrlRejectedError,
  isSubscriptionConfirmation,
  MessageExpiredError,
  SignatureInvalidError,
  TopicNotAllowedError,
  verifySnsMessage,
} from '../../src/providers/index.ts';
import { fixture } from './fixtures.ts';
import {
  createSnsSigner,
  recordingCertificateSource,
  type SnsSignatureVersion,
  snsNotification,
  snsSubscriptionConfirmation,
  TEST_CERT_URL,
  TEST_TOPIC_ARN,
  type UnsignedSnsMessage,
} from './sns-signer.ts';

const signer = createSnsSigner();
const sesDelivery = fixture<object>('ses/delivery.json');

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe.each(['1', '2'] as SnsSignatureVersion[])('verifySnsMessage, SignatureVersion %s', (version) => {
  const hash = version === '1' ? 'SHA1withRSA' : 'SHA256withRSA';

  it(`accepts a Notification signed with ${hash}, with and without Subject`, async () => {
    for (const subject of [undefined, 'Amazon SES Email Event Notification']) {
      const message = signer.sign(snsNotification({ message: sesDelivery, subject }), version);
      const verified = await verifySnsMessage(message, { certificates: signer.certificates });
      expect(verified).toMatchObject({
        Type: 'Notification',
        MessageId: message.MessageId,
        Message: message.Message,
      });
      expect(Object.isFrozen(verified)).toBe(true);
    }
  });

  it('accepts a SubscriptionConfirmation and an UnsubscribeConfirmation', async () => {
    const confirmation = signer.sign(snsSubscriptionConfirmation(), version);
    const verified = await verifySnsMessage(confirmation, { certificates: signer.certificates });
    expect(isSubscriptionConfirmation(verified)).toBe(true);
    const unsubscribe = signer.sign(
      { ...snsSubscriptionConfirmation(), Type: 'UnsubscribeConfirmation' },
      version,
    );
    await expect(verifySnsMessage(unsubscribe, { certificates: signer.certificates })).resolves.toMatchObject(
      {
        Type: 'UnsubscribeConfirmation',
      },
    );
  });

  it('accepts the raw request body as text, and a source that serves a bare public key', async () => {
    const message = signer.sign(snsNotification({ message: sesDelivery }), version);
    await expect(
      verifySnsMessage(JSON.stringify(message), { certificates: signer.certificates }),
    ).resolves.toBeTruthy();
    const keyOnly = recordingCertificateSource({ [TEST_CERT_URL]: signer.publicKeyPem });
    await expect(verifySnsMessage(message, { certificates: keyOnly })).resolves.toBeTruthy();
  });

  it('rejects a Message with one byte changed', async () => {
    const message = signer.sign(snsNotification({ message: sesDelivery }), version);
    const tampered = {
      ...message,
      Message: message.Message.replace('ada@customer.example', 'ada@customer.exampl3'),
    };
    const error = await rejectionOf(verifySnsMessage(tampered, { certificates: signer.certificates }));
    expect(error).toBeInstanceOf(SignatureInvalidError);
    expect(error).toMatchObject({ code: 'HOLDFAST_ERR_SIGNATURE_INVALID', provider: 'sns' });
  });

  it('rejects any signed field altered, added or removed', async () => {
    const message = signer.sign(snsNotification({ message: sesDelivery, subject: 'Hello' }), version);
    const confirmation = signer.sign(snsSubscriptionConfirmation(), version);
    const { Subject: _s, ...withoutSubject } = message;
    for (const tampered of [
      { ...message, Subject: 'Hellp' },
      withoutSubject,
      // Change the last character (never to itself: a UUID ends in 0 one time in sixteen).
      {
        ...message,
        MessageId: `${message.MessageId.slice(0, -1)}${message.MessageId.endsWith('0') ? '1' : '0'}`,
      },
      { ...message, TopicArn: 'arn:aws:sns:eu-west-1:123456789012:other-topic' },
      { ...message, Timestamp: new Date(Date.parse(message.Timestamp) - 1000).toISOString() },
      { ...confirmation, Token: `${confirmation.Token}0` },
      { ...confirmation, SubscribeURL: `${confirmation.SubscribeURL}&x=1` },
      { ...confirmation, Type: 'UnsubscribeConfirmation' },
    ]) {
      const error = await rejectionOf(verifySnsMessage(tampered, { certificates: signer.certificates }));
      expect(error).toBeInstanceOf(SignatureInvalidError);
    }
  });

  it("rejects a message signed with another key than the certificate's", async () => {
    const impostor = createSnsSigner();
    const message = impostor.sign(snsNotification({ message: sesDelivery }), version);
    const error = await rejectionOf(verifySnsMessage(message, { certificates: signer.certificates }));
    expect(error).toMatchObject({ code: 'HOLDFAST_ERR_SIGNATURE_INVALID' });
  });

  it('rejects a signature made with the other hash than SignatureVersion says', async () => {
    const other = version === '1' ? '2' : '1';
    const message = {
      ...signer.sign(snsNotification({ message: sesDelivery }), other),
      SignatureVersion: version,
    };
    await expect(verifySnsMessage(message, { certificates: signer.certificates })).rejects.toBeInstanceOf(
      SignatureInvalidError,
    );
  });
});

describe('verifySnsMessage refusals that happen before any certificate is fetched', () => {
  const signed = (overrides: Partial<UnsignedSnsMessage> = {}) =>
    signer.sign({ ...snsNotification({ message: sesDelivery }), ...overrides });

  it('rejects SigningCertURLs that are not https on an SNS host, without asking the source', async () => {
    for (const url of [
      'https://evil.example/SimpleNotificationService-1.pem',
      'http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem',
      'https://sns.eu-west-1.amazonaws.com.evil.example/SimpleNotificationService-1.pem',
      'https://sns.eu-west-1.amazonaws.com@evil.example/SimpleNotificationService-1.pem',
      'https://user@sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem',
      'https://sns.eu-west-1.amazonaws.com:8443/SimpleNotificationService-1.pem',
      'https://s3.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem',
      'https://evilsns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem',
      'https://sns.eu-west-1.amazonaws.com/not-a-cert.txt',
      'https://sns.eu-west-1.amazonaws.com/x.pem?redirect=https://evil.example/',
      'file:///etc/ssl/cert.pem',
      'sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem',
    ]) {
      const certificates = recordingCertificateSource({ [url]: signer.certificatePem });
      const message = { ...signed(), SigningCertURL: url };
      const error = await rejectionOf(verifySnsMessage(message, { certificates }));
      expect(error, url).toBeInstanceOf(CertificateUrlRejectedError);
      expect(error).toMatchObject({ code: 'HOLDFAST_ERR_CERTIFICATE_URL_REJECTED', url });
      expect(certificates.calls).toEqual([]);
    }
  });

  it('accepts SNS hosts in every partition form (regional, China)', async () => {
    for (const url of [
      'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-a.pem',
      'https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-a.pem',
      'https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-a.pem',
    ]) {
      const local = createSnsSigner({ certUrl: url });
      const message = local.sign(snsNotification({ message: sesDelivery }));
      await expect(verifySnsMessage(message, { certificates: local.certificates })).resolves.toBeTruthy();
      expect(local.certificates.calls).toEqual([url]);
    }
  });

  it('rejects a Timestamp older than an hour (replay), or older than a configured age', async () => {
    const now = new Date('2026-11-22T12:00:00.000Z');
    const certificates = recordingCertificateSource({ [TEST_CERT_URL]: signer.certificatePem });
    const old = signed({ Timestamp: '2026-11-22T10:59:59.999Z' });
    const error = await rejectionOf(verifySnsMessage(old, { certificates, now: () => now }));
    expect(error).toBeInstanceOf(MessageExpiredError);
    expect(error).toMatchObject({
      code: 'HOLDFAST_ERR_MESSAGE_EXPIRED',
      timestamp: '2026-11-22T10:59:59.999Z',
    });

    const recent = signed({ Timestamp: '2026-11-22T11:55:00.000Z' });
    await expect(verifySnsMessage(recent, { certificates, now: () => now })).resolves.toBeTruthy();
    await expect(
      verifySnsMessage(recent, { certificates, now: () => now, maxAgeMs: 60_000 }),
    ).rejects.toBeInstanceOf(MessageExpiredError);
    expect(certificates.calls).toEqual([TEST_CERT_URL]);
  });

  it('rejects a Timestamp further in the future than the allowed clock skew', async () => {
    const now = new Date('2026-11-22T12:00:00.000Z');
    const future = signed({ Timestamp: '2026-11-22T12:10:00.000Z' });
    await expect(
      verifySnsMessage(future, { certificates: signer.certificates, now: () => now }),
    ).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_MESSAGE_EXPIRED',
    });
    await expect(
      verifySnsMessage(future, {
        certificates: signer.certificates,
        now: () => now,
        maxClockSkewMs: 900_000,
      }),
    ).resolves.toBeTruthy();
  });

  it('rejects topics outside the allowlist', async () => {
    const certificates = recordingCertificateSource({ [TEST_CERT_URL]: signer.certificatePem });
    const other = signed({ TopicArn: 'arn:aws:sns:eu-west-1:999999999999:someone-elses-topic' });
    const error = await rejectionOf(
      verifySnsMessage(other, { certificates, allowedTopicArns: [TEST_TOPIC_ARN] }),
    );
    expect(error).toBeInstanceOf(TopicNotAllowedError);
    expect(certificates.calls).toEqual([]);
    await expect(
      verifySnsMessage(signed(), { certificates, allowedTopicArns: [TEST_TOPIC_ARN] }),
    ).resolves.toBeTruthy();
  });

  it('rejects an unsigned message as missing and an unknown SignatureVersion as invalid', async () => {
    const { Signature: _s, ...unsigned } = signed();
    for (const body of [unsigned, JSON.stringify(unsigned), { ...unsigned, Signature: '' }]) {
      await expect(verifySnsMessage(body, { certificates: signer.certificates })).rejects.toMatchObject({
        code: 'HOLDFAST_ERR_SIGNATURE_MISSING',
      });
    }
    await expect(
      verifySnsMessage({ ...signed(), SignatureVersion: '3' }, { certificates: signer.certificates }),
    ).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_SIGNATURE_INVALID',
      message: expect.stringMatching(/SignatureVersion/),
    });
    await expect(
      verifySnsMessage({ ...signed(), Signature: '!!not base64!!' }, { certificates: signer.certificates }),
    ).rejects.toMatchObject({ code: 'HOLDFAST_ERR_SIGNATURE_INVALID' });
  });

  it('rejects a signing certificate outside its validity period', async () => {
    const expired = createSnsSigner({
      notBefore: new Date('2020-01-01T00:00:00Z'),
      notAfter: new Date('2021-01-01T00:00:00Z'),
    });
    const message = expired.sign(snsNotification({ message: sesDelivery }));
    await expect(verifySnsMessage(message, { certificates: expired.certificates })).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_SIGNATURE_INVALID',
      message: expect.stringMatching(/certificate is valid/),
    });
  });

  it('rejects a source that serves something other than a certificate or RSA public key', async () => {
    const message = signed();
    const junk = recordingCertificateSource({ [TEST_CERT_URL]: 'hello' });
    await expect(verifySnsMessage(message, { certificates: junk })).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_SIGNATURE_INVALID',
      message: expect.stringMatching(/not a PEM certificate/),
    });
  });

  it('names what is malformed in the message itself', async () => {
    const { TopicArn: _t, ...noTopic } = signed();
    await expect(verifySnsMessage(noTopic, { certificates: signer.certificates })).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_PAYLOAD_INVALID',
      issues: [{ path: 'TopicArn' }],
    });
    await expect(verifySnsMessage('{not json', { certificates: signer.certificates })).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_PAYLOAD_INVALID',
    });
  });

  it('verifies the SubscriptionConfirmation fixture once signed (v1, as SNS topics default to)', async () => {
    const body = fixture<UnsignedSnsMessage & { SigningCertURL: string }>(
      'sns/subscription-confirmation.json',
    );
    const local = createSnsSigner({ certUrl: body.SigningCertURL });
    const message = local.sign(body, '1');
    const now = () => new Date('2026-11-22T09:00:30.000Z');
    await expect(verifySnsMessage(message, { certificates: local.certificates, now })).resolves.toMatchObject(
      {
        Type: 'SubscriptionConfirmation',
        TopicArn: TEST_TOPIC_ARN,
      },
    );
  });
});
