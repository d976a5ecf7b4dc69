export * from './errors.ts';
export { type SenderHandle, type SenderOptions, type SendJobResult, start } from './sender.ts';
export * from './transports/index.ts';
