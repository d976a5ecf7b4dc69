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
export { type DrainReport, EventWriter, type EventWriterOptions } from './event-writer.ts';
export {
  type SmsInput,
  smsInput,
  validateSms,
  validateWhatsApp,
  type WhatsAppInput,
  whatsappInput,
} from './messages.ts';
export { type OpsServer, type OpsServerOptions, startOpsServer } from './ops-server.ts';
export { createProducer, type Producer, type ProducerOptions } from './producer.ts';
export {
  closeQueueWorker,
  deadLetterWatchOf,
  type QueueWorkerOptions,
  startQueueWorker,
} from './queue-worker.ts';
export { createRedisConnection } from './redis-connection.ts';
export {
  archiveJobOptions,
  completionQueues,
  type Route,
  routes,
  sendFlow,
  sendJobOptions,
} from './routes.ts';
export { type Accepted, createSubmitter, type RecordInput, type Submitter } from './submitter.ts';
