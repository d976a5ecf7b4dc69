import { CertificateUrlRejectedError, SubscribeUrlRejectedError } from './errors.ts';

/** SNS regional endpoints, including China (`.amazonaws.com.cn`); nothing else may sign or be called. */
const SNS_HOST = /^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/;

/** Why `url` is not an https URL on an SNS endpoint, or undefined when it is one. */
function snsUrlProblem(url: string): string | undefined {
  if (!URL.canParse(url)) return 'not an absolute URL';
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:') return 'must use https';
  if (parsed.username || parsed.password) return 'must not carry credentials';
  if (parsed.port) return 'must use the default https port';
  if (!SNS_HOST.test(parsed.hostname)) return 'host is not an SNS endpoint (sns.<region>.amazonaws.com)';
  return undefined;
}

/** The SigningCertURL, checked before anything is fetched: an SNS host, a `.pem` path, no query. */
export function assertSnsCertificateUrl(url: string): URL {
  const problem =
    snsUrlProblem(url) ??
    (new URL(url).search || new URL(url).hash ? 'must not have a query or fragment' : undefined) ??
    (new URL(url).pathname.endsWith('.pem') ? undefined : 'path must end in .pem');
  if (problem) throw new CertificateUrlRejectedError(url, problem);
  return new URL(url);
}

/** The SubscribeURL of a SubscriptionConfirmation: an SNS host, and the ConfirmSubscription action only. */
export function assertSnsSubscribeUrl(url: string): URL {
  const problem =
    snsUrlProblem(url) ??
    (new URL(url).searchParams.get('Action') === 'ConfirmSubscription'
      ? undefined
      : 'must be a ConfirmSubscription action');
  if (problem) throw new SubscribeUrlRejectedError(url, problem);
  return new URL(url);
}
