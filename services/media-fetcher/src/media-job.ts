import {
  isEventId,
  keySegment,
  type MediaJobData,
  ValidationError,
  type ValidationIssue,
} from '@holdfast/core';

/** A media job that passed validation, with what its parent message key says. */
export interface MediaJob extends MediaJobData {
  provider: 'whatsapp' | 'twilio';
  /** The parent message's own date (from its key): the media is filed under the same day and instant. */
  messageOccurredAt: string;
  /** The provider id in the parent's key (wamid, Twilio SID), if it has one. */
  messageSid: string | undefined;
}

// <channel>/<project>/inbound/<yyyy>/<mm>/<dd>/<iso8601>_<hash12>[_<sid>].<ext>
const PARENT_KEY =
  /^(sms|whatsapp)\/([a-z0-9][a-z0-9._-]{0,62})\/inbound\/(\d{4})\/(\d{2})\/(\d{2})\/([0-9T:.+Z-]+)_[0-9a-f]{12}(?:_([A-Za-z0-9.=-]{1,128}))?\.[a-z0-9]+$/;
const MEDIA_ID = /^[A-Za-z0-9_.-]{1,128}$/;

/**
 * Validate a `media` job at the boundary: it came through Redis, so it is checked like any other
 * input. Every problem is named in one ValidationError (which fails the job for good).
 */
export function parseMediaJob(data: unknown): MediaJob {
  const issues: ValidationIssue[] = [];
  const d = (typeof data === 'object' && data !== null ? data : {}) as Partial<
    Record<keyof MediaJobData, unknown>
  >;
  const str = (name: keyof MediaJobData): string | undefined => {
    const value = d[name];
    if (typeof value === 'string' && value.length > 0) return value;
    issues.push({ path: name, message: 'must be a non-empty string' });
    return undefined;
  };
  const eventId = str('eventId');
  if (eventId !== undefined && !isEventId(eventId))
    issues.push({ path: 'eventId', message: 'must be a UUIDv7' });
  const project = str('project');
  if (project !== undefined && !keySegment.safeParse(project).success) {
    issues.push({ path: 'project', message: 'must be a project name' });
  }
  const channel = d.channel;
  if (channel !== 'sms' && channel !== 'whatsapp')
    issues.push({ path: 'channel', message: 'must be "sms" or "whatsapp"' });
  const provider = d.provider;
  if (provider !== 'whatsapp' && provider !== 'twilio') {
    issues.push({
      path: 'provider',
      message: `must be "whatsapp" or "twilio", got ${JSON.stringify(provider)}`,
    });
  }
  const retainUntil = str('retainUntil');
  if (retainUntil !== undefined && Number.isNaN(Date.parse(retainUntil))) {
    issues.push({ path: 'retainUntil', message: 'must be an ISO 8601 date' });
  }
  for (const name of ['subject', 'category'] as const) {
    const value = d[name];
    if (value !== undefined && (typeof value !== 'string' || value.length === 0 || value.length > 256)) {
      issues.push({ path: name, message: 'must be a non-empty string when present' });
    }
  }
  if (typeof d.category === 'string' && !keySegment.safeParse(d.category).success) {
    issues.push({ path: 'category', message: 'must be a category name' });
  }

  const messageKey = str('messageKey');
  const parent = messageKey === undefined ? null : PARENT_KEY.exec(messageKey);
  let messageOccurredAt = '';
  if (messageKey !== undefined) {
    const iso = parent?.[6];
    const at = iso === undefined ? Number.NaN : Date.parse(iso);
    if (!parent || Number.isNaN(at) || new Date(at).toISOString() !== iso) {
      issues.push({ path: 'messageKey', message: 'must be the archive key of an inbound message' });
    } else if (parent[1] !== channel || parent[2] !== project) {
      issues.push({ path: 'messageKey', message: "must belong to the job's channel and project" });
    } else if (`${parent[3]}-${parent[4]}-${parent[5]}` !== iso!.slice(0, 10)) {
      issues.push({ path: 'messageKey', message: 'has a date path that does not match its timestamp' });
    } else {
      messageOccurredAt = iso!;
    }
  }

  const media = (typeof d.media === 'object' && d.media !== null ? d.media : undefined) as
    | Partial<Record<keyof MediaJobData['media'], unknown>>
    | undefined;
  if (!media) issues.push({ path: 'media', message: 'must be an object' });
  else {
    if (
      typeof media.index !== 'number' ||
      !Number.isInteger(media.index) ||
      media.index < 0 ||
      media.index > 99
    ) {
      issues.push({ path: 'media.index', message: 'must be an integer from 0 to 99' });
    }
    if (provider === 'whatsapp' && (typeof media.mediaId !== 'string' || !MEDIA_ID.test(media.mediaId))) {
      issues.push({ path: 'media.mediaId', message: 'must be a WhatsApp media id' });
    }
    if (provider === 'twilio' && (typeof media.url !== 'string' || !URL.canParse(media.url))) {
      issues.push({ path: 'media.url', message: 'must be a URL' });
    }
    if (media.contentType !== undefined && typeof media.contentType !== 'string') {
      issues.push({ path: 'media.contentType', message: 'must be a string when present' });
    }
  }
  if (issues.length > 0) throw new ValidationError('media job', issues);
  return {
    ...(data as MediaJobData),
    provider: provider as 'whatsapp' | 'twilio',
    messageOccurredAt,
    messageSid: parent?.[7],
  };
}
