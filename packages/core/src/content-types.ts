import { extension } from 'mime-types';

/** The file extension an archive key gets for a content type (`bin` when unknown). */
export function extensionFor(contentType: string): string {
  return extension(contentType.split(';')[0]!.trim().toLowerCase()) || 'bin';
}
