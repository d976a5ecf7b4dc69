export { ARCHIVE_VERSION, archiveEvent } from './archive-event.ts';
export { type ArchiverHandle, type ArchiverOptions, start } from './archiver.ts';
export * from './errors.ts';
export {
  type HoldSelection,
  holdSelection,
  MATTER_CACHE_MS,
  type Matter,
  MatterExistsError,
  MatterNotFoundError,
  matches,
  openMatters,
  placeHold,
  type RebuiltMatter,
  rebuildMatters,
  releaseHold,
} from './holds.ts';
export { withHoldsLock } from './holds-lock.ts';
export { archiveOperatorAction, OPERATOR_CATEGORY, type OperatorAction } from './operator-event.ts';
export {
  type ClearInput,
  clearPause,
  completePendingPauses,
  countEvent,
  EmailAlreadyPausedError,
  EmailNotPausedError,
  type EmailPause,
  evaluateReputation,
  listPauses,
  type PauseInput,
  pauseEmail,
  pauseKey,
  REPUTATION_ACTOR,
  type ReputationContext,
  type ReputationKind,
  type ReputationRate,
  type ReputationReport,
  type ReputationThresholds,
  readPause,
  reputationCountKey,
  reputationKindOf,
  reputationOf,
  reputationSinceKey,
  trackReputation,
} from './reputation.ts';
export { applyRetentionTriggers, recordPolicyChange } from './retention-triggers.ts';
export { rebuildSubjectIndex, subjectVersions } from './subject-index.ts';
export {
  foldState,
  type MessageView,
  readMessage,
  rebuildTimelines,
  recordInTimeline,
  type TimelineEntry,
  timelineEntry,
} from './timeline.ts';
