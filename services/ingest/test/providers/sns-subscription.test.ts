import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  confirmSubscription,
  isSubscriptionConfirmation,
  type SnsConfirmation,
  type SnsMessage,
  SubscribeUrlRejectedError,
  SubscriptionConfirmError,
  verifySnsMessage,
} from '../../src/providers/index.ts';
import { type LoopbackSns, startLoopbackSns } from './loopback-sns.ts';
import { createSnsSigner, snsNotification, snsSubscriptionConfirmation } from './sns-signer.ts';

const signer = createSnsSigner();

function asConfirmation(message: SnsMessage): SnsConfirmation {
  if (!isSubscriptionConfirmation(message)) {
    throw new Error(`expected a SubscriptionConfirmation, got ${message.Type}`);
  }
  return message;
}
const confirmResponse = `<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <ConfirmSubscriptionResult><SubscriptionArn>arn:aws:sns:eu-west-1:123456789012:holdfast-ses-events:5c1d</SubscriptionArn></ConfirmSubscriptionResult>
  <ResponseMetadata><RequestId>5e6f</RequestId></ResponseMetadata>
</ConfirmSubscriptionResponse>`;

describe('confirmSubscription against an SNS stand-in on loopback', () => {
  let sns: LoopbackSns;
  beforeEach(async () => {
    sns = await startLoopbackSns();
    sns.handle((_req, res) => res.writeHead(200, { 'content-type': 'text/xml' }).end(confirmResponse));
  });
  afterEach(async () => {
    await sns.close();
  });

  it('requests the SubscribeURL of a verified SubscriptionConfirmation', async () => {
    const message = signer.sign(snsSubscriptionConfirmation());
    const verified = asConfirmation(await verifySnsMessage(message, { certificates: signer.certificates }));
    await confirmSubscription(verified, sns.fetch);
    const subscribeUrl = new URL(message.SubscribeURL);
    expect(sns.requests).toEqual([`GET ${subscribeUrl.pathname}${subscribeUrl.search}`]);
  });

  it('accepts just the URL once its confirmation was verified (the server passes { SubscribeURL })', async () => {
    const message = signer.sign(snsSubscriptionConfirmation());
    await verifySnsMessage(JSON.stringify(message), { certificates: signer.certificates });
    await confirmSubscription({ SubscribeURL: message.SubscribeURL }, sns.fetch);
    expect(sns.requests).toHaveLength(1);
  });

  it('never requests a SubscribeURL that no verified confirmation carried', async () => {
    const unverified = snsSubscriptionConfirmation();
    await expect(confirmSubscription(unverified, sns.fetch)).rejects.toBeInstanceOf(SubscriptionConfirmError);
    const forged = { ...signer.sign(snsSubscriptionConfirmation()), Token: 'forged' };
    await expect(verifySnsMessage(forged, { certificates: signer.certificates })).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_SIGNATURE_INVALID',
    });
    await expect(confirmSubscription(forged, sns.fetch)).rejects.toBeInstanceOf(SubscriptionConfirmError);
    // A verified Notification's UnsubscribeURL is not a confirmation either.
    const notification = await verifySnsMessage(signer.sign(snsNotification({ message: '{}' })), {
      certificates: signer.certificates,
    });
    await expect(
      confirmSubscription({ SubscribeURL: String(notification.UnsubscribeURL) }, sns.fetch),
    ).rejects.toBeInstanceOf(Error);
    expect(sns.requests).toEqual([]);
  });

  it('refuses a correctly signed SubscribeURL that is not an SNS ConfirmSubscription URL', async () => {
    for (const subscribeUrl of [
      'https://evil.example/?Action=ConfirmSubscription&Token=x',
      'http://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=x',
      'https://sns.eu-west-1.amazonaws.com/?Action=Publish&Message=x',
    ]) {
      const message = signer.sign(snsSubscriptionConfirmation({ subscribeUrl }));
      const verified = asConfirmation(await verifySnsMessage(message, { certificates: signer.certificates }));
      await expect(confirmSubscription(verified, sns.fetch)).rejects.toBeInstanceOf(
        SubscribeUrlRejectedError,
      );
    }
    expect(sns.requests).toEqual([]);
  });

  it('fails with SubscriptionConfirmError when SNS refuses', async () => {
    sns.handle((_req, res) => res.writeHead(403).end('<ErrorResponse/>'));
    const verified = asConfirmation(
      await verifySnsMessage(signer.sign(snsSubscriptionConfirmation()), {
        certificates: signer.certificates,
      }),
    );
    await expect(confirmSubscription(verified, sns.fetch)).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_SUBSCRIPTION_CONFIRM',
      message: expect.stringMatching(/HTTP 403/),
    });
  });
});
