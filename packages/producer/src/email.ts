import { keySegment, sha256Hex, ValidationError, zodIssues } from '@holdfast/core';
import addressparser from 'nodemailer/lib/addressparser';
import MailComposer from 'nodemailer/lib/mail-composer';
import { z } from 'zod';
import { MAX_ATTACHMENTS_BYTES, MAX_EVENT_BYTES, mebibytes } from './event-size.ts';

const MAX_ADDRESSES = 500;

const addressList = z.union([z.string(), z.array(z.string()).max(MAX_ADDRESSES)]).transform((value, ctx) => {
  const out: string[] = [];
  for (const entry of Array.isArray(value) ? value : [value]) {
    const parsed = addressparser(entry, { flatten: true });
    if (parsed.length === 0) ctx.addIssue({ code: 'custom', message: `no address in "${entry}"` });
    for (const a of parsed) {
      if (!/^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/.test(a.address)) {
        ctx.addIssue({ code: 'custom', message: `"${a.address || entry}" is not an email address` });
      } else {
        out.push(a.name ? `${JSON.stringify(a.name)} <${a.address}>` : a.address);
      }
    }
  }
  return out;
});

/** Attachments carry their content inline: reading a path or URL on the caller's behalf is refused. */
const attachment = z.strictObject({
  filename: z.string().min(1).max(255),
  content: z.union([z.string(), z.instanceof(Uint8Array)]),
  contentType: z
    .string()
    .regex(/^[\w.+-]+\/[\w.+-]+$/, 'must be a MIME type like application/pdf')
    .optional(),
  /** Set to `base64` when `content` is base64 text. */
  encoding: z.enum(['base64', 'utf8']).optional(),
});

/** Bytes of content an attachment carries (base64 text counts as the bytes it decodes to). */
function attachmentBytes(a: z.output<typeof attachment>): number {
  if (typeof a.content !== 'string') return a.content.byteLength;
  return Buffer.byteLength(a.content, a.encoding === 'base64' ? 'base64' : 'utf8');
}

export const emailInput = z
  .strictObject({
    from: addressList.refine((a) => a.length === 1, 'must be exactly one address'),
    to: addressList.refine((a) => a.length > 0, 'needs at least one recipient'),
    cc: addressList.optional(),
    bcc: addressList.optional(),
    replyTo: addressList.optional(),
    subject: z
      .string()
      .max(998)
      .refine((s) => !/[\r\n]/.test(s), 'must be one line'),
    text: z.string().optional(),
    html: z.string().optional(),
    attachments: z
      .array(attachment)
      .max(100)
      // Checked before composing: the MIME of 50 MiB of attachments would be built only to be refused.
      .refine(
        (list) => list.reduce((sum, a) => sum + attachmentBytes(a), 0) <= MAX_ATTACHMENTS_BYTES,
        `are larger than ${MAX_ATTACHMENTS_BYTES} bytes (${mebibytes(MAX_ATTACHMENTS_BYTES)}) together, the most ` +
          `that fits base64-encoded in one event (${mebibytes(MAX_EVENT_BYTES)})`,
      )
      .optional(),
    /** The kind selects the retention category `email-<kind>`. @defaultValue 'transactional' */
    kind: keySegment.default('transactional'),
    /** Caller metadata, archived in the sidecar (not in the message). */
    metadata: z.record(z.string().max(128), z.string().max(4096)).default({}),
  })
  .refine((m) => m.text !== undefined || m.html !== undefined, {
    message: 'needs text or html',
    path: ['text'],
  });

export type EmailInput = z.input<typeof emailInput>;
export type ValidEmail = z.output<typeof emailInput>;

export function validateEmail(input: unknown): ValidEmail {
  const parsed = emailInput.safeParse(input);
  if (!parsed.success) throw new ValidationError('email', zodIssues(parsed.error));
  return parsed.data;
}

export interface ComposedEmail {
  mime: string;
  sha256: string;
  messageId: string;
  envelope: { from: string; to: string[] };
}

/**
 * Build the RFC 5322 message once. These exact bytes are archived and later sent, so the
 * archive holds what the recipient got. The Message-ID embeds the event id; Bcc stays out of
 * the headers and only in the envelope (and the sidecar).
 */
export async function composeEmail(email: ValidEmail, eventId: string, date: Date): Promise<ComposedEmail> {
  const fromAddress = addressparser(email.from[0]!, { flatten: true })[0]!.address;
  const messageId = `<${eventId}@${fromAddress.split('@')[1]}>`;
  const node = new MailComposer({
    from: email.from[0],
    to: email.to,
    cc: email.cc,
    bcc: email.bcc,
    replyTo: email.replyTo,
    subject: email.subject,
    text: email.text,
    html: email.html,
    attachments: email.attachments?.map((a) => ({
      filename: a.filename,
      content: typeof a.content === 'string' ? a.content : Buffer.from(a.content),
      contentType: a.contentType,
      encoding: a.encoding,
    })),
    messageId,
    date,
    disableFileAccess: true,
    disableUrlAccess: true,
  }).compile();
  const envelope = node.getEnvelope();
  const bytes = await node.build();
  if (!envelope.from) throw new ValidationError('email', [{ path: 'from', message: 'has no address' }]);
  return {
    mime: bytes.toString('utf8'),
    sha256: sha256Hex(bytes),
    messageId,
    envelope: { from: envelope.from, to: envelope.to },
  };
}
