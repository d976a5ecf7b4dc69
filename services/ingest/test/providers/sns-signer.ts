/**
 * Signs SNS messages the way SNS does (RSA over the documented string to sign, SignatureVersion 1
 * = SHA1withRSA, 2 = SHA256withRSA) with a key generated per signer, and serves the matching
 * X.509 certificate through a CertificateSource that records what it was asked for. The string
 * to sign is built here from the AWS documentation, independently of src, so a mistake there
 * cannot cancel itself out in tests.
 */
import { generateKeyPairSync, type KeyObject, randomUUID, sign } from 'node:crypto';
import { CertificateFetchError, type CertificateSource } from '../../src/providers/index.ts';

export const TEST_REGION = 'eu-west-1';
export const TEST_TOPIC_ARN = `arn:aws:sns:${TEST_REGION}:123456789012:holdfast-ses-events`;
export const TEST_CERT_URL = `https://sns.${TEST_REGION}.amazonaws.com/SimpleNotificationService-0000000000000000000000000000test.pem`;

export type SnsSignatureVersion = '1' | '2';

/** The fields SNS signs or carries; values are strings as on the wire. */
export type UnsignedSnsMessage = Record<string, string | null | undefined> & {
  Type: string;
  MessageId: string;
  TopicArn: string;
  Message: string;
  Timestamp: string;
};

export type SignedSnsMessage<T> = T & { SignatureVersion: string; Signature: string; SigningCertURL: string };

/** A CertificateSource serving fixed PEMs by URL and recording every URL it was asked for. */
export interface RecordingCertificateSource extends CertificateSource {
  readonly calls: string[];
}

export function recordingCertificateSource(
  pems: Readonly<Record<string, string>>,
): RecordingCertificateSource {
  const calls: string[] = [];
  return {
    calls,
    async get(url: string): Promise<string> {
      calls.push(url);
      const pem = pems[url];
      if (pem === undefined) throw new CertificateFetchError(url, 'HTTP 404');
      return pem;
    },
  };
}

export interface SnsSigner {
  readonly certUrl: string;
  /** Self-signed X.509 certificate of the signing key, like the PEM SNS publishes at SigningCertURL. */
  readonly certificatePem: string;
  readonly publicKeyPem: string;
  readonly privateKey: KeyObject;
  /** Serves `certificatePem` at `certUrl`. */
  readonly certificates: RecordingCertificateSource;
  /** Adds SignatureVersion, SigningCertURL and Signature (default version '2'). */
  sign<T extends UnsignedSnsMessage>(message: T, version?: SnsSignatureVersion): SignedSnsMessage<T>;
}

export interface SnsSignerOptions {
  /** @defaultValue TEST_CERT_URL */
  certUrl?: string;
  /** @defaultValue one day ago */
  notBefore?: Date;
  /** @defaultValue in ten years */
  notAfter?: Date;
}

const NOTIFICATION_KEYS = ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'];
const CONFIRMATION_KEYS = ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];

/** AWS: "name\nvalue\n" for each key in byte order; Subject only when the notification has one. */
export function awsStringToSign(message: UnsignedSnsMessage): string {
  const keys = message.Type === 'Notification' ? NOTIFICATION_KEYS : CONFIRMATION_KEYS;
  let out = '';
  for (const key of keys) {
    const value = message[key];
    if (typeof value === 'string') out += `${key}\n${value}\n`;
  }
  return out;
}

export function createSnsSigner(options: SnsSignerOptions = {}): SnsSigner {
  const certUrl = options.certUrl ?? TEST_CERT_URL;
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const certificatePem = selfSignedCertificate(privateKey, publicKey, {
    commonName: 'sns.amazonaws.com',
    // Fixed, not "a day ago": tests verify fixtures at their own fixed clocks, which a certificate
    // made valid from yesterday stops covering a day after they were written.
    notBefore: options.notBefore ?? new Date('2020-01-01T00:00:00Z'),
    notAfter: options.notAfter ?? new Date(Date.now() + 10 * 365 * 86_400_000),
  });
  return {
    certUrl,
    certificatePem,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKey,
    certificates: recordingCertificateSource({ [certUrl]: certificatePem }),
    sign(message, version = '2') {
      const signature = sign(
        version === '1' ? 'sha1' : 'sha256',
        Buffer.from(awsStringToSign(message)),
        privateKey,
      );
      return {
        ...message,
        SignatureVersion: version,
        SigningCertURL: certUrl,
        Signature: signature.toString('base64'),
      };
    },
  };
}

export interface SnsNotificationInput {
  /** The SES event (serialised like SNS does) or any message text. */
  message: string | object;
  subject?: string;
  /** @defaultValue now */
  timestamp?: Date | string;
  /** @defaultValue a random UUID */
  messageId?: string;
  /** @defaultValue TEST_TOPIC_ARN */
  topicArn?: string;
}

/** An unsigned SNS Notification as SNS POSTs it to an HTTP(S) subscriber. */
export function snsNotification(input: SnsNotificationInput): UnsignedSnsMessage {
  const topicArn = input.topicArn ?? TEST_TOPIC_ARN;
  const timestamp = input.timestamp ?? new Date();
  return {
    Type: 'Notification',
    MessageId: input.messageId ?? randomUUID(),
    TopicArn: topicArn,
    ...(input.subject !== undefined && { Subject: input.subject }),
    Message: typeof input.message === 'string' ? input.message : JSON.stringify(input.message),
    Timestamp: typeof timestamp === 'string' ? timestamp : timestamp.toISOString(),
    UnsubscribeURL: `https://sns.${TEST_REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=${topicArn}:${randomUUID()}`,
  };
}

/** An unsigned SubscriptionConfirmation for `topicArn` (a fresh token and message id each call). */
export function snsSubscriptionConfirmation(
  input: { topicArn?: string; timestamp?: Date | string; subscribeUrl?: string } = {},
): UnsignedSnsMessage & { SubscribeURL: string; Token: string } {
  const topicArn = input.topicArn ?? TEST_TOPIC_ARN;
  const token = randomUUID().replaceAll('-', '').repeat(4);
  const timestamp = input.timestamp ?? new Date();
  return {
    Type: 'SubscriptionConfirmation',
    MessageId: randomUUID(),
    Token: token,
    TopicArn: topicArn,
    Message: `You have chosen to subscribe to the topic ${topicArn}.\nTo confirm the subscription, visit the SubscribeURL included in this message.`,
    SubscribeURL:
      input.subscribeUrl ??
      `https://sns.${TEST_REGION}.amazonaws.com/?Action=ConfirmSubscription&TopicArn=${topicArn}&Token=${token}`,
    Timestamp: typeof timestamp === 'string' ? timestamp : timestamp.toISOString(),
  };
}

// --- A minimal DER encoder: just enough X.509 for a self-signed RSA certificate. ---

function der(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const length =
    n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, content]);
}
const sequence = (...items: Buffer[]) => der(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => der(0x31, Buffer.concat(items));
const integer = (bytes: Buffer) =>
  der(0x02, bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
const nullValue = Buffer.from([0x05, 0x00]);
const utf8 = (s: string) => der(0x0c, Buffer.from(s, 'utf8'));

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const bytes = [a! * 40 + b!];
  for (const part of rest) {
    const chunk = [part & 0x7f];
    for (let v = part >> 7; v > 0; v >>= 7) chunk.unshift((v & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return der(0x06, Buffer.from(bytes));
}

function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  // RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
  return date.getUTCFullYear() < 2050
    ? der(0x17, Buffer.from(`${iso.slice(2)}Z`))
    : der(0x18, Buffer.from(`${iso}Z`));
}

/** 8 random bytes, positive and without a leading zero byte (DER integers are minimal). */
function serialNumber(): Buffer {
  const bytes = Buffer.from(randomUUID().replaceAll('-', '').slice(0, 16), 'hex');
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes;
}

function selfSignedCertificate(
  privateKey: KeyObject,
  publicKey: KeyObject,
  { commonName, notBefore, notAfter }: { commonName: string; notBefore: Date; notAfter: Date },
): string {
  const sha256WithRsa = sequence(oid('1.2.840.113549.1.1.11'), nullValue);
  const name = sequence(set(sequence(oid('2.5.4.3'), utf8(commonName))));
  const tbs = sequence(
    der(0xa0, integer(Buffer.from([2]))), // v3
    integer(serialNumber()),
    sha256WithRsa,
    name,
    sequence(time(notBefore), time(notAfter)),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
  );
  const signature = sign('sha256', tbs, privateKey);
  const certificate = sequence(tbs, sha256WithRsa, der(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const base64 = certificate.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${base64}${base64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`;
}
