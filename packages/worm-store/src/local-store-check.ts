import { stat } from 'node:fs/promises';
import { StoreUnavailableError } from './errors.ts';
import { LocalWormStore } from './local-worm-store.ts';
import { type StoreCheckReport, storeCheckReport } from './store-check-report.ts';

/**
 * The local half of `checkStore`: what `LocalWormStore` guarantees, said plainly. It opens the store
 * (creating the directory as `open` does) and passes — with a warning that Object Lock is enforced
 * in-process only, so the store is not WORM against root — unless other local users can write
 * into the directory.
 */
export async function checkLocalStore(dir: string, minimumRetentionDays: number): Promise<StoreCheckReport> {
  const store = await LocalWormStore.open({ dir });
  const root = store.description.slice('local:'.length);
  await store.close();
  let mode: number;
  try {
    mode = (await stat(root)).mode & 0o777;
  } catch (err) {
    throw new StoreUnavailableError(store.description, 'stat', { cause: err });
  }
  const octal = `0${mode.toString(8).padStart(3, '0')}`;
  const others = mode & 0o007;
  return storeCheckReport(store.description, [
    {
      name: 'object-lock',
      status: 'warn',
      detail:
        `enforced in-process only: anyone with write access to ${root}, root included, can delete or change ` +
        'records, so this store is not WORM against root; regulated records need s3://<bucket> with Object Lock COMPLIANCE',
    },
    {
      name: 'versioning',
      status: 'pass',
      detail: 'every put adds a new immutable version; versions are never overwritten',
    },
    {
      name: 'default-retention',
      status: 'pass',
      detail:
        'no bucket default applies: only Holdfast writes here, and every version carries COMPLIANCE ' +
        `retention from the policy (shortest category ${minimumRetentionDays} days)`,
    },
    others & 0o002
      ? {
          name: 'public-access-block',
          status: 'fail',
          detail: `${root} is writable by every local user (mode ${octal}); expected no access for other users (chmod o-rwx)`,
        }
      : {
          name: 'public-access-block',
          status: others ? 'warn' : 'pass',
          detail: `a local directory, not served over the network (mode ${octal}${others ? ': other local users can read records; chmod o-rwx to stop them' : ''})`,
        },
    {
      name: 'encryption',
      status: 'warn',
      detail:
        'not encrypted by Holdfast: records are as protected at rest as the disk is (use full-disk encryption)',
    },
    {
      name: 'replication',
      status: 'warn',
      detail: `not replicated: back up ${root} elsewhere`,
    },
  ]);
}
