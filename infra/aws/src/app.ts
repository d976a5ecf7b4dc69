import type { App } from 'aws-cdk-lib';
import { HoldfastArchiveStack } from './archive-stack.ts';
import type { HoldfastInfraConfig } from './config.ts';
import { HoldfastReplicaStack } from './replica-stack.ts';

export interface HoldfastStacks {
  archive: HoldfastArchiveStack;
  replica: HoldfastReplicaStack;
}

/** Both stacks; the replica deploys first because the primary's replication rules name its buckets. */
export function buildApp(app: App, config: HoldfastInfraConfig): HoldfastStacks {
  const replica = new HoldfastReplicaStack(app, 'HoldfastArchiveReplica', {
    config,
    description: `Holdfast WORM archive replicas (${config.replicaRegion})`,
  });
  const archive = new HoldfastArchiveStack(app, 'HoldfastArchive', {
    config,
    description: `Holdfast WORM archive (${config.region}), replicating to ${config.replicaRegion}`,
  });
  archive.addStackDependency(replica, 'replication rules name the replica buckets and key alias');
  return { archive, replica };
}
