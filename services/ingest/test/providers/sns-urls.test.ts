import { describe, expect, it } from 'vitest';
import { CertificateUrlRejectedError, SubscribeUrlRejectedError } from '../../src/providers/index.ts';
import { assertSnsCertificateUrl, assertSnsSubscribeUrl } from '../../src/providers/sns-urls.ts';

const PEM = '/SimpleNotificationService-0000000000000000000000000000test.pem';
const CONFIRM = '/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:123456789012:t&Token=abc';

/** Hosts of real SNS regional endpoints, in each partition's form. */
const SNS_HOSTS = [
  'sns.us-east-1.amazonaws.com',
  'sns.eu-west-1.amazonaws.com',
  'sns.ap-southeast-4.amazonaws.com',
  'sns.me-central-1.amazonaws.com',
  'sns.us-gov-west-1.amazonaws.com',
  'sns.cn-north-1.amazonaws.com.cn',
  'sns.cn-northwest-1.amazonaws.com.cn',
];

/**
 * `sns.` followed by something that is not a region: S3 endpoints of a bucket named "sns"
 * (anyone who owns it could serve a certificate), other services, China's domain with a
 * non-China region and the reverse, and look-alikes.
 */
const NOT_SNS_HOSTS = [
  'sns.s3.amazonaws.com',
  'sns.s3-us-west-2.amazonaws.com',
  'sns.s3-accelerate.amazonaws.com',
  'sns.s3-external-1.amazonaws.com',
  'sns.s3.us-east-1.amazonaws.com',
  'sns.s3-website-us-east-1.amazonaws.com',
  'sns.execute-api.amazonaws.com',
  'sns.us-east-1.amazonaws.com.cn',
  'sns.cn-north-1.amazonaws.com',
  'sns.us-east.amazonaws.com',
  'sns.amazonaws.com',
  'sns.us-east-1.amazonaws.com.',
  'sns.us-east-1.amazonaws.com.evil.example',
  'evilsns.us-east-1.amazonaws.com',
];

describe('assertSnsCertificateUrl', () => {
  it('accepts https .pem URLs on SNS regional endpoints (commercial, GovCloud, China)', () => {
    for (const host of SNS_HOSTS) {
      expect(assertSnsCertificateUrl(`https://${host}${PEM}`).hostname, host).toBe(host);
    }
  });

  it('refuses hosts that start with sns. but are not an SNS region (S3 buckets named "sns", other services)', () => {
    for (const host of NOT_SNS_HOSTS) {
      const url = `https://${host}${PEM}`;
      expect(() => assertSnsCertificateUrl(url), host).toThrow(CertificateUrlRejectedError);
    }
  });

  it('refuses http and any path that does not end in .pem', () => {
    for (const url of [
      `http://sns.us-east-1.amazonaws.com${PEM}`,
      'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem.txt',
      'https://sns.us-east-1.amazonaws.com/',
    ]) {
      expect(() => assertSnsCertificateUrl(url), url).toThrow(CertificateUrlRejectedError);
    }
  });
});

describe('assertSnsSubscribeUrl', () => {
  it('accepts ConfirmSubscription URLs on SNS regional endpoints only', () => {
    for (const host of SNS_HOSTS) {
      expect(assertSnsSubscribeUrl(`https://${host}${CONFIRM}`).hostname, host).toBe(host);
    }
    for (const host of NOT_SNS_HOSTS) {
      const url = `https://${host}${CONFIRM}`;
      expect(() => assertSnsSubscribeUrl(url), host).toThrow(SubscribeUrlRejectedError);
    }
  });
});
