import { SubscriptionConfirmError } from './errors.ts';
import { assertSnsSubscribeUrl } from './sns-urls.ts';
import { isVerifiedSubscribeUrl } from './sns-verify.ts';

/**
 * Confirm an SNS subscription by requesting its SubscribeURL: only a URL that arrived in a
 * SubscriptionConfirmation verifySnsMessage accepted, and only an SNS ConfirmSubscription URL.
 * This request is the one an attacker would most like us to make for them.
 * Throws SubscribeUrlRejectedError or SubscriptionConfirmError.
 */
export async function confirmSubscription(
  message: { readonly SubscribeURL: string },
  fetchImpl: typeof fetch = globalThis.fetch,
  timeoutMs = 10_000,
): Promise<void> {
  const url = assertSnsSubscribeUrl(message.SubscribeURL);
  if (!isVerifiedSubscribeUrl(message.SubscribeURL)) {
    throw new SubscriptionConfirmError('the SubscribeURL is not from a verified SubscriptionConfirmation');
  }
  let response: Response;
  try {
    response = await fetchImpl(url.href, { redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
    // SNS answers with a small XML document; read it so the connection can be reused.
    await response.arrayBuffer();
  } catch (cause) {
    throw new SubscriptionConfirmError(`SubscribeURL request failed: ${(cause as Error)?.message ?? cause}`, {
      cause,
    });
  }
  if (!response.ok) throw new SubscriptionConfirmError(`SNS answered HTTP ${response.status}`);
}
