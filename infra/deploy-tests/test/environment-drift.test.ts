// Deployment and code cannot drift apart: every variable the services read (ENVIRONMENT_VARIABLES
// from @holdfast/core, plus the ones pending there) must be set in the compose file and in the
// Kubernetes manifests — or be a documented optional variable whose built-in default applies — and
// nothing may set a variable that nothing reads.
import { join } from 'node:path';
import { ENVIRONMENT_VARIABLES, loadConfig } from '@holdfast/core';
import { describe, expect, it } from 'vitest';
import {
  holdfastServices,
  isKnownVariable,
  K8S_BASE,
  K8S_PRODUCTION,
  type K8sObject,
  kustomizeAvailable,
  loadCompose,
  PENDING_IN_CORE,
  rawResources,
  readEnvFile,
  renderKustomization,
  SECRET_VARIABLES,
  SERVICES,
  serviceVariables,
} from '../src/index.ts';

interface Container {
  name: string;
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
}
type Workload = K8sObject & { spec: { template: { spec: { containers: Container[] } } } };

/** Variable names each Kubernetes workload's container gets, resolving envFrom ConfigMaps. */
function kubernetesEnvironments(objects: K8sObject[], configMaps: Record<string, Record<string, string>>) {
  const result = new Map<string, Set<string>>();
  for (const o of objects.filter((x) => x.kind === 'StatefulSet' || x.kind === 'Deployment') as Workload[]) {
    const names = new Set<string>();
    for (const c of o.spec.template.spec.containers) {
      for (const from of c.envFrom ?? []) {
        if (from.secretRef)
          throw new Error(`${o.metadata.name}: envFrom secretRef hides which variables it sets`);
        const data = configMaps[from.configMapRef!.name];
        if (!data) throw new Error(`${o.metadata.name}: ConfigMap ${from.configMapRef!.name} not found`);
        for (const key of Object.keys(data)) names.add(key);
      }
      for (const e of c.env ?? []) names.add(e.name);
    }
    result.set(o.metadata.name.replace(/^holdfast-/, ''), names);
  }
  return result;
}

function renderedConfigMaps(objects: K8sObject[]): Record<string, Record<string, string>> {
  return Object.fromEntries(
    objects
      .filter((o) => o.kind === 'ConfigMap')
      .map((o) => [o.metadata.name, (o as K8sObject & { data?: Record<string, string> }).data ?? {}]),
  );
}

/** What a deployment must give `service`: everything, except secrets it does not use. */
function required(service: string): string[] {
  return serviceVariables().filter((v) => SECRET_VARIABLES[v]?.services.includes(service) ?? true);
}

const missingFrom = (names: Set<string>, service: string) => required(service).filter((v) => !names.has(v));

describe('environment variables: code and deployment agree', () => {
  it('reads the list from @holdfast/core (and the variables still pending there)', () => {
    expect(ENVIRONMENT_VARIABLES).toContain('REDIS_URL');
    expect(serviceVariables()).toEqual(
      expect.arrayContaining([...ENVIRONMENT_VARIABLES, ...Object.keys(PENDING_IN_CORE)]),
    );
  });

  it('exempts only optional variables: the services start without them', () => {
    const all = Object.fromEntries(serviceVariables().map((v) => [v, undefined]));
    for (const variable of Object.keys(SECRET_VARIABLES)) {
      expect(ENVIRONMENT_VARIABLES, variable).toContain(variable);
      expect(() => loadConfig({ ...all, [variable]: undefined }), variable).not.toThrow();
    }
  });

  it('docker-compose.yml sets every variable for every service, and nothing unknown', () => {
    const compose = loadCompose();
    const services = holdfastServices(compose);
    expect([...services.keys()].sort()).toEqual([...SERVICES].sort());
    for (const [service, [, spec]] of services) {
      const names = new Set(Object.keys(spec.environment as Record<string, string>));
      // Compose is for local use: every service gets every variable (the ingest-only ones are harmless).
      expect(
        serviceVariables().filter((v) => !names.has(v)),
        `missing in compose service ${service}`,
      ).toEqual([]);
      expect(
        [...names].filter((v) => !isKnownVariable(v)),
        `unknown in compose service ${service}`,
      ).toEqual([]);
    }
  });

  it('the Kubernetes base sets every variable for every workload (read without kubectl)', () => {
    // The ConfigMap comes from a generator; read its env file directly.
    const configMaps = { 'holdfast-config': readEnvFile(join(K8S_BASE, 'holdfast.env')) };
    const environments = kubernetesEnvironments(rawResources(K8S_BASE), configMaps);
    expect([...environments.keys()].sort()).toEqual([...SERVICES].sort());
    for (const [service, names] of environments) {
      expect(missingFrom(names, service), `missing in Kubernetes workload ${service}`).toEqual([]);
      expect(
        [...names].filter((v) => !isKnownVariable(v)),
        `unknown in Kubernetes workload ${service}`,
      ).toEqual([]);
    }
  });

  it.skipIf(!kustomizeAvailable()).each([
    ['base', K8S_BASE],
    ['production overlay', K8S_PRODUCTION],
  ])('the rendered Kubernetes %s sets every variable for every workload', (_name, dir) => {
    const objects = renderKustomization(dir);
    const environments = kubernetesEnvironments(objects, renderedConfigMaps(objects));
    expect([...environments.keys()].sort()).toEqual([...SERVICES].sort());
    for (const [service, names] of environments) {
      expect(missingFrom(names, service), `missing in ${service}`).toEqual([]);
      expect(
        [...names].filter((v) => !isKnownVariable(v)),
        `unknown in ${service}`,
      ).toEqual([]);
    }
  });

  it('the overlay’s configuration changes only variables the base defines', () => {
    const base = readEnvFile(join(K8S_BASE, 'holdfast.env'));
    const production = readEnvFile(join(K8S_PRODUCTION, 'holdfast.env'));
    expect(Object.keys(production).filter((k) => !(k in base))).toEqual([]);
  });
});
