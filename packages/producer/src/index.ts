export {
  BREAKER_DEFAULTS,
  Breaker,
  type BreakerOptions,
  type BreakerSettings,
  type BreakerState,
  type BreakerStateChange,
  breakerOpenErrorOf,
  breakerSettingsFrom,
  createBreaker,
} from './breaker.ts';
export { type BreakerGate, gateWorker } from './breaker-gate.ts';
export { registerBreakerMetrics } from './breaker-metrics.ts';
export {
  BREAKER_STATE_MAX_AGE_MS,
  BREAKER_STATES_KEY,
  type BreakerStateEntry,
  type BreakerStatePublisher,
  type BreakerStateRecord,
  type PublishBreakerStatesOptions,
  publishBreakerStates,
  readBreakerStates,
} from './breaker-states.ts';
export {
  type DeadLetter,
  type DeadLetterActionItem,
  type DeadLetterActionOptions,
  type DeadLetterActionReport,
  type DeadLetterAttempt,
  type DeadLetterChild,
  type DeadLetterClass,
  type DeadLetterFilter,
  type DeadLetterRef,
  type DeadLetterSelection,
  type DeadLetterSummary,
  DeadLetters,
  type DeadLettersOptions,
  type DeadLetterWatch,
  type DeadLetterWatchOptions,
  isQueueName,
  type SweepReport,
  watchDeadLetters,
} from './dead-letters.ts';
export { type ComposedEmail, composeEmail, type EmailInput, validateEmail } from './email.ts';
export * from './errors.ts';
export { MAX_ATTACHMENTS_BYTES, MAX_DOCUMENT_BYTES, MAX_EVENT_BYTES } from './event-size.ts';
export { type DrainReport, EventWriter, type EventWriterOptions } from './event-writer.ts';
export {
  type SmsInput,
  smsInput,
  validateSms,
  validateWhatsApp,
  type WhatsAppInput,
  whatsappInput,
} from './messages.ts';
export {
  type ArchiveWriteOutcome,
  countSend,
  type HoldfastMetrics,
  holdfastMetrics,
  type JobOutcome,
  type MediaFetchOutcome,
  observeArchiveJobs,
  observeJobs,
  observeMediaJobs,
  observeSpool,
  type SendMetricOutcome,
} from './metrics.ts';
export {
  collectProcessMetrics,
  type OpsServer,
  type OpsServerOptions,
  readiness,
  renderMetrics,
  startOpsServer,
} from './ops-server.ts';
export { createProducer, type Producer, type ProducerOptions } from './producer.ts';
export { mergePrometheusText } from './prometheus-text.ts';
export { openQueue } from './queue-client.ts';
export { type QueueStatus, readQueueStatus } from './queue-status.ts';
export {
  closeQueueWorker,
  deadLetterWatchOf,
  type QueueWorkerOptions,
  startQueueWorker,
} from './queue-worker.ts';
export { createRedisConnection } from './redis-connection.ts';
export { RedisScript } from './redis-script.ts';
export {
  archiveJobOptions,
  completionQueues,
  type Route,
  routes,
  sendFlow,
  sendJobOptions,
} from './routes.ts';
export {
  type PublishedSpoolState,
  publishSpoolState,
  readSpoolStates,
  SPOOL_STATE_KEY,
  type SpoolStateOptions,
  type SpoolStatePublisher,
} from './spool-state.ts';
export { type Accepted, createSubmitter, type RecordInput, type Submitter } from './submitter.ts';
