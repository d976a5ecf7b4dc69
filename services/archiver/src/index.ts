export { ARCHIVE_VERSION, archiveEvent } from './archive-event.ts';
export { type ArchiverHandle, type ArchiverOptions, start } from './archiver.ts';
export * from './errors.ts';
