import { join } from 'node:path';
import { loadConfig, RetentionPolicy } from '@holdfast/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  K8S_BASE,
  K8S_PRODUCTION,
  type K8sObject,
  kustomizeAvailable,
  referencedFiles,
  renderKustomization,
  SERVICES,
  schemaErrors,
  WORKER_QUEUES,
  WORKERS,
} from '../src/index.ts';

// Shapes of the fields the checks read; the schema test validates the whole objects.
interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  env?: {
    name: string;
    value?: string;
    valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
  }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  securityContext?: Record<string, unknown>;
}
interface StatefulSetSpec {
  replicas?: number;
  serviceName: string;
  selector: { matchLabels: Record<string, string> };
  persistentVolumeClaimRetentionPolicy?: { whenDeleted?: string; whenScaled?: string };
  volumeClaimTemplates?: { metadata: { name: string }; spec: { accessModes: string[] } }[];
  template: {
    metadata: { labels: Record<string, string> };
    spec: {
      serviceAccountName: string;
      terminationGracePeriodSeconds?: number;
      securityContext?: Record<string, unknown>;
      containers: Container[];
      volumes?: { name: string; configMap?: { name: string } }[];
    };
  };
}

const byKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);
const named = (objects: K8sObject[], kind: string, name: string) => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
};
const spec = <T>(o: K8sObject) => o.spec as T;
const configMapData = (objects: K8sObject[], name: string) =>
  (objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name)?.data ?? {}) as Record<
    string,
    string
  >;

describe('kustomization files (no kubectl needed)', () => {
  it.each([
    ['base', K8S_BASE],
    ['production overlay', K8S_PRODUCTION],
  ])('%s: every referenced resource, patch and generator file exists and parses', (_name, dir) => {
    expect(referencedFiles(dir).length).toBeGreaterThan(3);
  });
});

describe.skipIf(!kustomizeAvailable()).each([
  ['base', K8S_BASE],
  ['production overlay', K8S_PRODUCTION],
])('rendered with kubectl kustomize: %s', (_name, dir) => {
  let objects: K8sObject[];
  beforeAll(() => {
    objects = renderKustomization(dir);
  });
  const workload = (service: string) => named(objects, 'StatefulSet', `holdfast-${service}`);
  const podSpec = (service: string) => spec<StatefulSetSpec>(workload(service)).template.spec;
  const container = (service: string) => podSpec(service).containers[0]!;
  const env = (service: string): Record<string, string> => {
    const c = container(service);
    const fromMaps = (c.envFrom ?? []).flatMap((f) =>
      f.configMapRef ? Object.entries(configMapData(objects, f.configMapRef.name)) : [],
    );
    const direct = (c.env ?? []).map((e) => [
      e.name,
      e.value ?? `<secret ${e.valueFrom?.secretKeyRef?.key}>`,
    ]);
    return Object.fromEntries([...fromMaps, ...direct]);
  };

  it('validates every object against its Kubernetes / KEDA / Prometheus Operator schema', () => {
    expect(objects.length).toBeGreaterThan(15);
    expect(objects.flatMap(schemaErrors)).toEqual([]);
    // The validators do reject a malformed object.
    expect(schemaErrors({ ...workload('archiver'), spec: { selector: 'nope' } } as K8sObject)).not.toEqual(
      [],
    );
  });

  it('puts everything in the holdfast namespace, labelled part-of holdfast', () => {
    for (const o of objects) {
      if (o.kind === 'Namespace') continue;
      expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe('holdfast');
      expect(o.metadata.labels?.['app.kubernetes.io/part-of'], `${o.kind} ${o.metadata.name}`).toBe(
        'holdfast',
      );
    }
    expect(
      named(objects, 'Namespace', 'holdfast').metadata.labels?.['pod-security.kubernetes.io/enforce'],
    ).toBe('restricted');
  });

  it('runs each service as a StatefulSet whose replicas each keep a persistent spool volume', () => {
    expect(
      byKind(objects, 'StatefulSet')
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(SERVICES.map((s) => `holdfast-${s}`).sort());
    for (const service of SERVICES) {
      const s = spec<StatefulSetSpec>(workload(service));
      const claim = s.volumeClaimTemplates?.find((t) => t.metadata.name === 'spool');
      expect(claim?.spec.accessModes, service).toEqual(['ReadWriteOnce']);
      // Kept when a pod restarts, is rescheduled, or the set scales down (it drains when the ordinal returns).
      expect(s.persistentVolumeClaimRetentionPolicy).toEqual({ whenDeleted: 'Retain', whenScaled: 'Retain' });
      const mount = container(service).volumeMounts?.find((m) => m.name === 'spool');
      expect(env(service).HOLDFAST_SPOOL_DIR?.startsWith(`${mount?.mountPath}/`), service).toBe(true);
      named(objects, 'Service', s.serviceName);
    }
  });

  it('probes readiness on /readyz and liveness on /healthz, on a port the container declares', () => {
    for (const service of SERVICES) {
      const c = container(service);
      expect(c.readinessProbe?.httpGet?.path, service).toBe('/readyz');
      expect(c.livenessProbe?.httpGet?.path, service).toBe('/healthz');
      expect(c.startupProbe?.httpGet?.path, service).toBe('/healthz');
      for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) {
        const port = c.ports?.find((p) => p.name === probe?.httpGet?.port);
        expect(port, `${service} probe port ${probe?.httpGet?.port}`).toBeDefined();
      }
      const e = env(service);
      const portOf = (name: string) => String(c.ports?.find((p) => p.name === name)?.containerPort);
      expect(portOf('metrics'), service).toBe(e.HOLDFAST_METRICS_PORT);
      if (service === 'ingest') expect(portOf('http')).toBe(e.PORT);
    }
    // Ingest is probed on its HTTP port; workers on their metrics port.
    expect(container('ingest').readinessProbe?.httpGet?.port).toBe('http');
    for (const w of WORKERS) expect(container(w).readinessProbe?.httpGet?.port).toBe('metrics');
  });

  it('gives pods a termination grace period just above the services’ shutdown deadline', () => {
    for (const service of SERVICES) {
      const deadlineMs = Number(env(service).HOLDFAST_SHUTDOWN_DEADLINE_MS);
      const grace = podSpec(service).terminationGracePeriodSeconds!;
      expect(grace * 1000, service).toBeGreaterThan(deadlineMs);
      expect(grace * 1000 - deadlineMs, service).toBeLessThanOrEqual(10_000);
    }
  });

  it('has a PodDisruptionBudget for each service selecting exactly its pods', () => {
    for (const service of SERVICES) {
      const pdb = spec<{ maxUnavailable?: number; selector: { matchLabels: Record<string, string> } }>(
        named(objects, 'PodDisruptionBudget', `holdfast-${service}`),
      );
      expect(pdb.maxUnavailable).toBe(1);
      expect(pdb.selector.matchLabels).toEqual(spec<StatefulSetSpec>(workload(service)).selector.matchLabels);
      expect(spec<StatefulSetSpec>(workload(service)).template.metadata.labels).toMatchObject(
        pdb.selector.matchLabels,
      );
    }
  });

  it('scales each worker with KEDA on its queues’ waiting jobs from the bullmq_job_count metric', () => {
    expect(
      byKind(objects, 'ScaledObject')
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(WORKERS.map((w) => `holdfast-${w}`).sort());
    for (const worker of WORKERS) {
      const so = spec<{
        scaleTargetRef: { apiVersion: string; kind: string; name: string };
        minReplicaCount: number;
        maxReplicaCount: number;
        triggers: { type: string; metadata: Record<string, string> }[];
      }>(named(objects, 'ScaledObject', `holdfast-${worker}`));
      expect(so.scaleTargetRef).toEqual({
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        name: `holdfast-${worker}`,
      });
      // The workers are what export the metric: never scale to zero.
      expect(so.minReplicaCount).toBeGreaterThanOrEqual(1);
      expect(so.maxReplicaCount).toBeGreaterThan(so.minReplicaCount);
      // KEDA owns the replica count; a replicas field would be reset on every apply.
      expect(spec<StatefulSetSpec>(workload(worker)).replicas, worker).toBeUndefined();

      const [trigger] = so.triggers;
      expect(so.triggers).toHaveLength(1);
      expect(trigger!.type).toBe('prometheus');
      const query = trigger!.metadata.query!;
      expect(query).toMatch(/\bbullmq_job_count\{/);
      expect(query).toMatch(/state=~"waiting\|prioritized"/);
      expect(query).toContain(`namespace="${workload(worker).metadata.namespace}"`);
      const queues = /queue=~?"([^"]+)"/.exec(query)![1]!.split('|');
      expect(queues.sort()).toEqual([...WORKER_QUEUES[worker]].sort());
      // Every replica reports the queue-wide gauge, so the query takes one pod's view (max), not a sum.
      expect(query).toMatch(/^max\(sum by \(pod\) \(/);
      expect(Number(trigger!.metadata.threshold)).toBeGreaterThan(0);
      expect(trigger!.metadata.serverAddress).toMatch(/^https?:\/\//);
      // Prometheus scrapes the port that exports it.
      const annotations = (
        workload(worker).spec as StatefulSetSpec & {
          template: { metadata: { annotations?: Record<string, string> } };
        }
      ).template.metadata.annotations;
      expect(annotations?.['prometheus.io/port']).toBe(env(worker).HOLDFAST_METRICS_PORT);
    }
  });

  it('runs unprivileged: non-root user, read-only root filesystem, no capabilities, no API token', () => {
    for (const service of SERVICES) {
      const pod = podSpec(service);
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, fsGroup: 1000 });
      expect(container(service).securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      expect(pod.serviceAccountName).toBe(`holdfast-${service}`);
      named(objects, 'ServiceAccount', `holdfast-${service}`);
      expect(container(service).image).toMatch(new RegExp(`holdfast/${service}:[\\w.-]+$`));
    }
  });

  it('gives each service a configuration @holdfast/core accepts, with the retention policy mounted', async () => {
    for (const service of SERVICES) {
      const values = Object.fromEntries(
        Object.entries(env(service)).map(([k, v]) => [k, v.startsWith('<secret') ? undefined : v]),
      );
      const config = loadConfig({ ...values, REDIS_URL: 'redis://redis:6379' });
      expect(config.store).toMatch(/^s3:\/\//);
      expect(config.channels.email.transport).toEqual({ kind: 'provider' });
      // The policy file the services read is the ConfigMap mounted at that path.
      const mount = container(service).volumeMounts?.find((m) => m.name === 'retention-policy');
      expect(config.retentionPolicyPath).toBe(join(mount!.mountPath, 'retention-policy.yaml'));
      const cm = podSpec(service).volumes?.find((v) => v.name === 'retention-policy')?.configMap?.name;
      const policyText = configMapData(objects, cm!)['retention-policy.yaml']!;
      const policy = new RetentionPolicy(
        (parse(policyText) as { categories: Record<string, string> }).categories,
        cm!,
      );
      expect(policy.has('default')).toBe(true);
    }
    // REDIS_URL comes from the Secret, never from a ConfigMap.
    for (const service of SERVICES) {
      const redis = container(service).env?.find((e) => e.name === 'REDIS_URL');
      expect(redis?.valueFrom?.secretKeyRef).toEqual({ name: 'holdfast-secrets', key: 'REDIS_URL' });
    }
  });
});

describe.skipIf(!kustomizeAvailable())('production overlay specifics', () => {
  it('pins images to a registry tag, uses gp3 spool volumes, runs three ingest replicas and a PodMonitor', () => {
    const objects = renderKustomization(K8S_PRODUCTION);
    for (const s of byKind(objects, 'StatefulSet')) {
      const ss = spec<StatefulSetSpec>(s);
      expect(ss.template.spec.containers[0]!.image).toMatch(
        /\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com\/holdfast\//,
      );
      expect(ss.volumeClaimTemplates![0]!.spec).toMatchObject({ storageClassName: 'gp3' });
    }
    expect(spec<StatefulSetSpec>(named(objects, 'StatefulSet', 'holdfast-ingest')).replicas).toBe(3);
    const monitor = spec<{
      selector: { matchLabels: Record<string, string> };
      podMetricsEndpoints: { port: string }[];
    }>(named(objects, 'PodMonitor', 'holdfast'));
    expect(monitor.podMetricsEndpoints.map((e) => e.port)).toEqual(['metrics']);
    expect(monitor.selector.matchLabels).toEqual({ 'app.kubernetes.io/part-of': 'holdfast' });
  });
});
