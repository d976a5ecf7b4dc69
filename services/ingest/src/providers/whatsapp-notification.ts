import { canonicalJson, sha256Hex } from '@holdfast/core';
import { z } from 'zod';
import { parsePayload } from './payload-issues.ts';
import type { ProviderEvent } from './provider-event.ts';

const WHAT = 'WhatsApp notification';

// Meta documents timestamps as strings of unix seconds; tolerate numbers, which some relays emit.
const unixSeconds = z.union([
  z.string().regex(/^\d{1,12}$/, 'must be unix seconds'),
  z.number().int().nonnegative(),
]);

const notificationSchema = z.looseObject({
  object: z.literal('whatsapp_business_account'),
  entry: z.array(
    z.looseObject({
      id: z.string().min(1),
      changes: z.array(
        z.looseObject({
          field: z.string().min(1),
          value: z.record(z.string(), z.unknown()),
        }),
      ),
    }),
  ),
});

const messageSchema = z.looseObject({
  id: z.string().min(1),
  // Optional: Meta is moving to business-scoped user ids, and a missing sender is no reason to drop a message.
  from: z.string().min(1).optional(),
  timestamp: unixSeconds,
  type: z.string().min(1),
  context: z.looseObject({}).optional(),
});
type WhatsAppMessage = z.infer<typeof messageSchema> & Record<string, unknown>;

const statusError = z.looseObject({
  code: z.union([z.number(), z.string()]).optional(),
  title: z.string().optional(),
  message: z.string().optional(),
  error_data: z.looseObject({ details: z.string().optional() }).optional(),
});

const statusSchema = z.looseObject({
  id: z.string().min(1),
  status: z.string().min(1),
  timestamp: unixSeconds,
  recipient_id: z.string().optional(),
  conversation: z.looseObject({}).optional(),
  pricing: z.looseObject({}).optional(),
  biz_opaque_callback_data: z.string().optional(),
  errors: z.array(statusError).optional(),
});
type WhatsAppStatus = z.infer<typeof statusSchema>;

const messagesValueSchema = z.looseObject({
  messaging_product: z.literal('whatsapp'),
  metadata: z.looseObject({
    display_phone_number: z.string(),
    phone_number_id: z.string().min(1),
  }),
  contacts: z
    .array(
      z.looseObject({
        wa_id: z.string().optional(),
        profile: z.looseObject({ name: z.string().optional() }).optional(),
      }),
    )
    .optional(),
  messages: z.array(messageSchema).optional(),
  statuses: z.array(statusSchema).optional(),
});
type MessagesValue = z.infer<typeof messagesValueSchema>;

const media = z.looseObject({
  id: z.string().min(1),
  mime_type: z.string().optional(),
  sha256: z.string().optional(),
  caption: z.string().optional(),
  filename: z.string().optional(),
});
const mediaTypes = ['image', 'document', 'audio', 'video', 'sticker'] as const;

/**
 * Content checks for the message types Meta documents; anything else is `provider.unknown`.
 * Only what we read is required: the rest stays in `raw`.
 */
const contentSchemas: Record<string, z.ZodType> = {
  text: z.looseObject({ text: z.looseObject({ body: z.string() }) }),
  ...Object.fromEntries(mediaTypes.map((t) => [t, z.looseObject({ [t]: media })])),
  location: z.looseObject({
    location: z.looseObject({
      latitude: z.number(),
      longitude: z.number(),
      name: z.string().optional(),
      address: z.string().optional(),
    }),
  }),
  contacts: z.looseObject({ contacts: z.array(z.looseObject({})) }),
  interactive: z.looseObject({
    interactive: z.looseObject({
      type: z.string().min(1),
      button_reply: z.looseObject({ id: z.string(), title: z.string() }).optional(),
      list_reply: z
        .looseObject({ id: z.string(), title: z.string(), description: z.string().optional() })
        .optional(),
    }),
  }),
  button: z.looseObject({
    button: z.looseObject({ text: z.string().optional(), payload: z.string().optional() }),
  }),
  reaction: z.looseObject({
    reaction: z.looseObject({ message_id: z.string().min(1), emoji: z.string().optional() }),
  }),
  order: z.looseObject({ order: z.looseObject({}) }),
  system: z.looseObject({ system: z.looseObject({ body: z.string().optional() }) }),
  unsupported: z.looseObject({}),
};

/** The statuses Meta documents; others are `provider.unknown`. */
export const whatsappStatuses = ['sent', 'delivered', 'read', 'failed', 'deleted'] as const;

function toDate(seconds: string | number): Date {
  return new Date(Number(seconds) * 1000);
}

interface ChangeContext {
  notification: Record<string, unknown>;
  entry: Record<string, unknown>;
  change: Record<string, unknown>;
  value: MessagesValue;
}

/**
 * The provider's payload narrowed to one event: a complete notification of the same shape with
 * only this message or status, so unknown sibling fields (errors, contacts, metadata) stay with it.
 */
function narrowedRaw(
  ctx: ChangeContext,
  key: 'messages' | 'statuses',
  item: unknown,
): Record<string, unknown> {
  const { messages: _m, statuses: _s, ...rest } = ctx.value;
  return {
    ...ctx.notification,
    entry: [{ ...ctx.entry, changes: [{ ...ctx.change, value: { ...rest, [key]: [item] } }] }],
  };
}

function messageContent(m: WhatsAppMessage): Record<string, unknown> {
  const content = m[m.type] as Record<string, unknown> | undefined;
  switch (m.type) {
    case 'text':
      return { text: content?.body };
    case 'image':
    case 'document':
    case 'audio':
    case 'video':
    case 'sticker': {
      const { caption, filename, sha256, mime_type } = content as z.infer<typeof media>;
      return {
        ...(caption !== undefined && { caption }),
        ...(filename !== undefined && { filename }),
        ...(sha256 !== undefined && { sha256 }),
        ...(mime_type !== undefined && { mimeType: mime_type }),
      };
    }
    case 'location':
      return { location: content };
    case 'interactive': {
      const reply = (content?.button_reply ?? content?.list_reply) as
        | { id?: string; title?: string }
        | undefined;
      return {
        interactive: { type: content?.type, ...reply },
        ...(reply?.title !== undefined && { text: reply.title }),
      };
    }
    case 'button':
      return { button: content, ...(content?.text !== undefined && { text: content.text }) };
    case 'reaction':
      return { reaction: { messageId: content?.message_id, emoji: content?.emoji } };
    case 'system':
      return { system: content, ...(content?.body !== undefined && { text: content.body }) };
    case 'unsupported':
      return { errors: m.errors };
    default:
      return {};
  }
}

function messageEvent(ctx: ChangeContext, m: WhatsAppMessage, path: string): ProviderEvent {
  const known = Object.hasOwn(contentSchemas, m.type);
  if (known) parsePayload(contentSchemas[m.type]!, m, WHAT, path);
  // The sender's profile: by wa_id, or the only contact when the message names no phone number.
  const contact =
    m.from !== undefined
      ? ctx.value.contacts?.find((c) => c.wa_id === m.from)
      : ctx.value.contacts?.length === 1
        ? ctx.value.contacts[0]
        : undefined;
  const mediaObject = (mediaTypes as readonly string[]).includes(m.type)
    ? (m[m.type] as z.infer<typeof media>)
    : undefined;
  return {
    provider: 'whatsapp',
    channel: 'whatsapp',
    direction: 'inbound',
    type: known ? 'message.received' : 'provider.unknown',
    occurredAt: toDate(m.timestamp),
    providerEventId: known ? `${m.id}:inbound` : `${m.id}:${m.type}`,
    providerMessageId: m.id,
    data: {
      ...(m.from !== undefined && { from: m.from }),
      to: ctx.value.metadata.display_phone_number,
      phoneNumberId: ctx.value.metadata.phone_number_id,
      businessAccountId: ctx.entry.id,
      ...(contact?.profile?.name !== undefined && { profileName: contact.profile.name }),
      messageType: m.type,
      ...(known && messageContent(m)),
      ...(m.context !== undefined && { context: m.context }),
      raw: narrowedRaw(ctx, 'messages', m),
    },
    media: mediaObject
      ? [
          mediaObject.mime_type !== undefined
            ? { mediaId: mediaObject.id, contentType: mediaObject.mime_type, index: 0 }
            : { mediaId: mediaObject.id, index: 0 },
        ]
      : [],
  };
}

function statusEvent(ctx: ChangeContext, s: WhatsAppStatus): ProviderEvent {
  const known = (whatsappStatuses as readonly string[]).includes(s.status);
  const first = s.errors?.[0];
  return {
    provider: 'whatsapp',
    channel: 'whatsapp',
    direction: 'outbound',
    type: known ? `message.${s.status}` : 'provider.unknown',
    occurredAt: toDate(s.timestamp),
    providerEventId: `${s.id}:${s.status}`,
    providerMessageId: s.id,
    data: {
      status: s.status,
      ...(s.recipient_id !== undefined && { recipientId: s.recipient_id }),
      from: ctx.value.metadata.display_phone_number,
      phoneNumberId: ctx.value.metadata.phone_number_id,
      businessAccountId: ctx.entry.id,
      ...(s.conversation !== undefined && { conversation: s.conversation }),
      ...(s.pricing !== undefined && { pricing: s.pricing }),
      ...(s.biz_opaque_callback_data !== undefined && { bizOpaqueCallbackData: s.biz_opaque_callback_data }),
      ...(first && {
        error: {
          ...(first.code !== undefined && { code: String(first.code) }),
          ...(first.title !== undefined && { title: first.title }),
          ...(first.message !== undefined && { message: first.message }),
          ...(first.error_data?.details !== undefined && { details: first.error_data.details }),
        },
      }),
      ...(s.errors !== undefined && { errors: s.errors }),
      raw: narrowedRaw(ctx, 'statuses', s),
    },
    media: [],
  };
}

/**
 * A change we do not model (another webhook field, or a messages change with neither messages
 * nor statuses): archived whole as `provider.unknown`. Its id is a hash of its content, so a
 * redelivery collapses onto the first.
 */
function unknownChangeEvent(
  notification: Record<string, unknown>,
  entry: Record<string, unknown> & { id: string },
  change: Record<string, unknown> & { field: string; value: Record<string, unknown> },
  receivedAt: Date,
): ProviderEvent {
  const own = unixSeconds.safeParse(change.value.timestamp);
  const entryTime = unixSeconds.safeParse(entry.time);
  return {
    provider: 'whatsapp',
    channel: 'whatsapp',
    direction: 'inbound',
    type: 'provider.unknown',
    occurredAt: own.success ? toDate(own.data) : entryTime.success ? toDate(entryTime.data) : receivedAt,
    providerEventId: `${entry.id}:${change.field}:${sha256Hex(canonicalJson(change.value)).slice(0, 32)}`,
    data: {
      field: change.field,
      businessAccountId: entry.id,
      raw: { ...notification, entry: [{ ...entry, changes: [change] }] },
    },
    media: [],
  };
}

/**
 * A WhatsApp Business Cloud API webhook notification: one event per inbound message and per
 * status, in payload order. `receivedAt` dates only changes that carry no timestamp of their own.
 */
export function parseWhatsAppNotification(body: unknown, receivedAt: Date = new Date()): ProviderEvent[] {
  parsePayload(notificationSchema, body, WHAT);
  // Validated, and the schema transforms nothing: read the caller's objects so raw keeps their key order.
  const notification = body as z.infer<typeof notificationSchema>;
  const events: ProviderEvent[] = [];
  notification.entry.forEach((entry, e) => {
    entry.changes.forEach((change, c) => {
      const path = `entry.${e}.changes.${c}.value`;
      if (change.field !== 'messages') {
        events.push(unknownChangeEvent(notification, entry, change, receivedAt));
        return;
      }
      parsePayload(messagesValueSchema, change.value, WHAT, path);
      const value = change.value as MessagesValue;
      const ctx: ChangeContext = { notification, entry, change, value };
      const before = events.length;
      value.messages?.forEach((m, i) => {
        events.push(messageEvent(ctx, m as WhatsAppMessage, `${path}.messages.${i}`));
      });
      for (const s of value.statuses ?? []) events.push(statusEvent(ctx, s));
      if (events.length === before) events.push(unknownChangeEvent(notification, entry, change, receivedAt));
    });
  });
  return events;
}
