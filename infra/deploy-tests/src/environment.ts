import { ENVIRONMENT_VARIABLES } from '@holdfast/core';

/**
 * Variables the services are to read that `@holdfast/core` does not list yet. Deployment sets them
 * already; once core lists one, it is simply counted once.
 */
export const PENDING_IN_CORE: Readonly<Record<string, string>> = Object.freeze({
  HOLDFAST_METRICS_PORT: 'every service serves /metrics, /healthz and /readyz on this port (default 9464)',
});

/**
 * Optional secrets, each given only to the services that use it (from the Secret
 * `holdfast-secrets` on Kubernetes); elsewhere their built-in default (unset) holds.
 */
export const SECRET_VARIABLES: Readonly<Record<string, { services: readonly string[]; use: string }>> =
  Object.freeze({
    HOLDFAST_API_KEYS: { services: ['ingest'], use: 'ingest API keys' },
    HOLDFAST_ADMIN_API_KEY: { services: ['ingest'], use: 'the operator pages on ingest (Bull Board)' },
    HOLDFAST_TWILIO_AUTH_TOKEN: {
      services: ['ingest', 'sender', 'media-fetcher'],
      use: 'Twilio webhook signatures, the Messages API and MMS media downloads',
    },
    HOLDFAST_WHATSAPP_APP_SECRET: { services: ['ingest'], use: 'WhatsApp webhook signatures' },
    HOLDFAST_WHATSAPP_VERIFY_TOKEN: { services: ['ingest'], use: 'WhatsApp webhook verification' },
    HOLDFAST_WHATSAPP_ACCESS_TOKEN: {
      services: ['sender', 'media-fetcher'],
      use: 'the WhatsApp Cloud API (messages and media)',
    },
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
