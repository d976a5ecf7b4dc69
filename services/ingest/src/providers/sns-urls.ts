import { CertificateUrlRejectedError, SubscribeUrlRejectedError } from './errors.ts';

/**
 * SNS regional endpoints, nothing else may sign or be called: `sns.<region>.amazonaws.com`
 * (commercial, GovCloud) and `sns.cn-<area>-<n>.amazonaws.com.cn` (China, only under its own
 * domain). The label must have a region's shape (`us-east-1`, `us-gov-west-1`): a looser one
 * such as `s3`, `s3-us-west-2` or `s3-accelerate` is the S3 endpoint of a bucket named "sns",
 * whose owner could serve any certificate.
 */
const SNS_HOST =
  /^sns\.(?:(?!cn-)[a-z]{2}(?:-gov)?-[a-z]+-\d+\.amazonaws\.com|cn-[a-z]+-\d+\.amazonaws\.com\.cn)$/;

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
