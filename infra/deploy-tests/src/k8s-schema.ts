import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { K8sObject } from './kustomize.ts';

type Validator = (data: Record<string, unknown>) => void;
const model =
  (Ctor: new (data: never) => { validate(): void }): Validator =>
  (data) =>
    new Ctor(data as never).validate();

/**
 * JSON-schema validators generated from the Kubernetes OpenAPI (kubernetes-models) and from the
 * KEDA and Prometheus Operator CRDs, by `apiVersion/kind`. A kind without a validator is an error.
 */
const VALIDATORS: Readonly<Record<string, Validator>> = Object.freeze({
  'v1/Namespace': model(Namespace),
  'v1/ConfigMap': model(ConfigMap),
  'v1/Service': model(Service),
  'v1/ServiceAccount': model(ServiceAccount),
  'apps/v1/StatefulSet': model(StatefulSet),
  'policy/v1/PodDisruptionBudget': model(PodDisruptionBudget),
  'keda.sh/v1alpha1/ScaledObject': model(ScaledObject),
  'monitoring.coreos.com/v1/PodMonitor': model(PodMonitor),
});

/** Schema errors of one object, as readable lines (empty when valid). */
export function schemaErrors(object: K8sObject): string[] {
  const key = `${object.apiVersion}/${object.kind}`;
  const validator = VALIDATORS[key];
  if (!validator) return [`${key} ${object.metadata?.name}: no schema to validate against`];
  const { apiVersion: _a, kind: _k, ...data } = object;
  try {
    validator(data);
    return [];
  } catch (error) {
    const details = (error as { errors?: { instancePath: string; message?: string }[] }).errors;
    return details?.length
      ? details.map((e) => `${key} ${object.metadata.name}${e.instancePath}: ${e.message}`)
      : [`${key} ${object.metadata.name}: ${(error as Error).message}`];
  }
}
