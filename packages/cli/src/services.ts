import { start as startArchiver } from '@holdfast/archiver';
import type { HoldfastConfig, ServiceHandle } from '@holdfast/core';
import { start as startIngest } from '@holdfast/ingest';
import { start as startSender } from '@holdfast/sender';

/** Every service `holdfast run` and `holdfast dev` can start, by name. */
export const SERVICES: Readonly<
  Record<string, (config: Readonly<HoldfastConfig>) => Promise<ServiceHandle>>
> = Object.freeze({
  archiver: startArchiver,
  sender: startSender,
  ingest: startIngest,
});
