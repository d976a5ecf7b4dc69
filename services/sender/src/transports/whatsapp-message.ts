import type { OutboundWhatsApp } from './transport.ts';

/**
 * The Cloud API message object for one outbound message: the envelope fields plus the content
 * exactly as archived (what is archived is what is sent; the producer validated it). The event id
 * rides along as `biz_opaque_callback_data`, which Meta echoes in the status webhooks.
 */
export function cloudApiMessage(message: OutboundWhatsApp): Record<string, unknown> {
  const envelope = {
    messaging_product: 'whatsapp',
    recipient_type: 'individual',
    to: message.to,
    type: message.content.type,
    biz_opaque_callback_data: message.eventId,
  };
  const content = message.content;
  switch (content.type) {
    case 'text':
      return {
        ...envelope,
        text: {
          body: content.text,
          ...(content.previewUrl === undefined ? {} : { preview_url: content.previewUrl }),
        },
      };
    case 'template':
      return {
        ...envelope,
        template: {
          name: content.template.name,
          language: { code: content.template.language },
          ...(content.template.components.length > 0 ? { components: content.template.components } : {}),
        },
      };
    default: {
      const { link, id, caption, filename } = content.media;
      return {
        ...envelope,
        [content.type]: {
          ...(link === undefined ? {} : { link }),
          ...(id === undefined ? {} : { id }),
          ...(caption === undefined ? {} : { caption }),
          ...(filename === undefined ? {} : { filename }),
        },
      };
    }
  }
}
