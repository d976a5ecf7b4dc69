export { ARCHIVE_VERSION, archiveEvent } from './archive-event.ts';
export { type ArchiverHandle, type ArchiverOptions, start } from './archiver.ts';
export * from './errors.ts';
export {
  foldState,
  type MessageView,
  readMessage,
  rebuildTimelines,
  recordInTimeline,
  type TimelineEntry,
  timelineEntry,
} from './timeline.ts';
export { archiveOperatorAction, OPERATOR_CATEGORY, type OperatorAction } from './operator-event.ts';
