export { type ComposedEmail, composeEmail, type EmailInput, validateEmail } from './email.ts';
export * from './errors.ts';
export { type DrainReport, EventWriter, type EventWriterOptions } from './event-writer.ts';
export { type OpsServer, type OpsServerOptions, startOpsServer } from './ops-server.ts';
export { createProducer, type Producer, type ProducerOptions } from './producer.ts';
export { closeQueueWorker, type QueueWorkerOptions, startQueueWorker } from './queue-worker.ts';
export { createRedisConnection } from './redis-connection.ts';
export { archiveJobOptions, emailFlow, type Route, routes, sendJobOptions, topQueue } from './routes.ts';
export { type Accepted, createSubmitter, type RecordInput, type Submitter } from './submitter.ts';
