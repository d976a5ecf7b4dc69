export * from './errors.ts';
export type { SendJobResult, SendOutcome } from './send-attempts.ts';
export { type SenderHandle, type SenderOptions, start } from './sender.ts';
export * from './transports/index.ts';
