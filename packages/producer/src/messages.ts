import {
  type ChannelConfig,
  canonicalJson,
  e164,
  keySegment,
  type SmsSubmittedData,
  ValidationError,
  type WhatsAppSubmittedData,
  whatsappContent,
  zodIssues,
} from '@holdfast/core';
import { z } from 'zod';

const metadata = z.record(z.string().max(128), z.string().max(4096)).default({});
/** The kind selects the retention category `<channel>-<kind>`. @defaultValue 'transactional' */
const kind = keySegment.default('transactional');

export const smsInput = z.strictObject({
  /** An E.164 number you own at the provider, or a Twilio Messaging Service SID (MG…). */
  from: z.union([e164, z.string().regex(/^MG[0-9a-fA-F]{32}$/)], {
    error: 'must be an E.164 number like +14155550100 or a Messaging Service SID (MG…)',
  }),
  to: e164,
  /** Up to 1,600 characters (Twilio splits it into segments). */
  body: z.string().min(1, 'must not be empty').max(1600),
  /** MMS: up to 10 public https URLs the provider fetches and attaches. */
  mediaUrls: z
    .array(z.url({ protocol: /^https$/, error: 'must be an https URL' }))
    .max(10)
    .default([]),
  kind,
  metadata,
});
export type SmsInput = z.input<typeof smsInput>;

/** Exactly one of `text`, `template` or `media`, as the WhatsApp Cloud API sends them. */
export const whatsappInput = z
  .strictObject({
    to: e164,
    text: z.string().min(1).max(4096).optional(),
    template: z
      .strictObject({
        name: z.string(),
        language: z.string(),
        components: z.array(z.record(z.string(), z.unknown())).optional(),
      })
      .optional(),
    media: z
      .strictObject({
        type: z.enum(['image', 'document', 'audio', 'video', 'sticker']),
        link: z.string().optional(),
        id: z.string().optional(),
        caption: z.string().optional(),
        filename: z.string().optional(),
      })
      .optional(),
    kind,
    metadata,
  })
  .refine((m) => [m.text, m.template, m.media].filter((x) => x !== undefined).length === 1, {
    message: 'needs exactly one of text, template or media',
    path: ['text'],
  });
export type WhatsAppInput = z.input<typeof whatsappInput>;

export function validateSms(input: unknown, channel: ChannelConfig): SmsSubmittedData {
  const parsed = smsInput.safeParse(input);
  if (!parsed.success) throw new ValidationError('sms', zodIssues(parsed.error));
  return { ...parsed.data, failMode: channel.failMode, delivery: channel.delivery };
}

/**
 * Template components are the caller's objects, of any shape: they are normalised to plain JSON
 * before they are validated, as a record's `data` is, so what is validated is exactly what is
 * spooled and sent (an object's `toJSON` could make it something else once encoded). Values JSON
 * cannot carry exactly (BigInt, cycles, NaN) are refused before anything is written.
 */
function plainTemplate<T extends { components?: unknown[] | undefined }>(template: T): T {
  if (template.components === undefined) return template;
  try {
    return { ...template, components: JSON.parse(canonicalJson(template.components)) as unknown[] };
  } catch (error) {
    throw new ValidationError('whatsapp message', [
      { path: 'template.components', message: (error as Error).message },
    ]);
  }
}

export function validateWhatsApp(input: unknown, channel: ChannelConfig): WhatsAppSubmittedData {
  const parsed = whatsappInput.safeParse(input);
  if (!parsed.success) throw new ValidationError('whatsapp message', zodIssues(parsed.error));
  const m = parsed.data;
  const { type: mediaType, ...media } = m.media ?? { type: 'image' as const };
  const content = whatsappContent.safeParse(
    m.text !== undefined
      ? { type: 'text', text: m.text }
      : m.template
        ? { type: 'template', template: plainTemplate(m.template) }
        : { type: mediaType, media },
  );
  // The content's paths (`text`, `template.name`, `media.link`) are the caller's own field names.
  if (!content.success) throw new ValidationError('whatsapp message', zodIssues(content.error));
  return {
    to: m.to,
    content: content.data,
    kind: m.kind,
    failMode: channel.failMode,
    delivery: channel.delivery,
    metadata: m.metadata,
  };
}
