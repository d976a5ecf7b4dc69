import type { HoldfastConfig, Logger } from '@holdfast/core';
import type { EventWriter, Submitter } from '@holdfast/producer';
import type { Redis } from 'ioredis';
import type { ApiKeys } from './api-keys.ts';
import type { CertificateSource } from './providers/index.ts';

/** Everything the routes need, built once by `start` (or by a test). */
export interface IngestDeps {
  config: Readonly<HoldfastConfig>;
  writer: EventWriter;
  submitter: Submitter;
  /** Idempotency keys, the read model, readiness. */
  redis: Redis;
  apiKeys: ApiKeys;
  log: Logger;
  /** Where SNS signing certificates come from. @defaultValue only https://sns.<region>.amazonaws.com */
  snsCertificates: CertificateSource;
  /** How an SNS SubscriptionConfirmation is confirmed (a GET of its SubscribeURL). */
  confirmSnsSubscription: (subscribeUrl: string) => Promise<void>;
}
