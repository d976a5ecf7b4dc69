import { ENVIRONMENT_VARIABLES } from '@holdfast/core';

/**
 * Variables the services are to read that `@holdfast/core` does not list yet. Deployment sets them
 * already; once core lists one, it is simply counted once.
 */
export const PENDING_IN_CORE: Readonly<Record<string, string>> = Object.freeze({
  HOLDFAST_METRICS_PORT: 'workers serve /metrics, /healthz and /readyz on this port (default 9464)',
});

/**
 * Optional variables only the ingest service uses (secrets for its API and provider webhooks). On
 * Kubernetes they are given to the ingest pods only; elsewhere their built-in default (unset) holds.
 */
export const INGEST_ONLY: Readonly<Record<string, string>> = Object.freeze({
  HOLDFAST_API_KEYS: 'ingest API keys (Secret holdfast-secrets)',
  HOLDFAST_TWILIO_AUTH_TOKEN: 'Twilio webhook signatures (Secret holdfast-secrets)',
  HOLDFAST_WHATSAPP_APP_SECRET: 'WhatsApp webhook signatures (Secret holdfast-secrets)',
  HOLDFAST_WHATSAPP_VERIFY_TOKEN: 'WhatsApp webhook verification (Secret holdfast-secrets)',
});

/** Read by the AWS SDK, not by Holdfast's config: compose gives MinIO credentials this way. */
export const AWS_SDK_VARIABLES: readonly string[] = Object.freeze([
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
]);

/** Every variable a Holdfast service reads: core's list plus the pending ones. */
export function serviceVariables(): string[] {
  return [...new Set([...ENVIRONMENT_VARIABLES, ...Object.keys(PENDING_IN_CORE)])];
}

/** A deployment may set only variables something reads: catches typos and stale names. */
export function isKnownVariable(name: string): boolean {
  return serviceVariables().includes(name) || AWS_SDK_VARIABLES.includes(name) || name === 'NODE_ENV';
}
