import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

let kubectl: boolean | undefined;
/** `kubectl kustomize` renders overlays offline; kubectl is on this project's machine image. */
export function kustomizeAvailable(): boolean {
  kubectl ??= spawnSync('kubectl', ['kustomize', '--help'], { stdio: 'ignore' }).status === 0;
  return kubectl;
}

/** Render a kustomization directory exactly as `kubectl apply -k` would. */
export function renderKustomization(dir: string): K8sObject[] {
  const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  return parseAllDocuments(out)
    .map((d) => d.toJSON() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

interface Kustomization {
  resources?: string[];
  patches?: { path?: string; patch?: string }[];
  patchesStrategicMerge?: string[];
  configMapGenerator?: { envs?: string[]; files?: string[] }[];
  secretGenerator?: { envs?: string[]; files?: string[] }[];
}

/**
 * Every file a kustomization (and the kustomizations it includes) refers to, checked to exist; YAML
 * files are parsed. Works without kubectl, and names the file and the reference that is broken.
 */
export function referencedFiles(dir: string): string[] {
  const file = join(dir, 'kustomization.yaml');
  if (!existsSync(file)) throw new Error(`${dir}: no kustomization.yaml`);
  const k = parse(readFileSync(file, 'utf8')) as Kustomization;
  const found: string[] = [file];
  const need = (rel: string, what: string) => {
    const path = join(dir, rel);
    if (!existsSync(path)) throw new Error(`${file}: ${what} ${rel} does not exist`);
    return path;
  };
  for (const rel of k.resources ?? []) {
    const path = need(rel, 'resource');
    if (statSync(path).isDirectory()) found.push(...referencedFiles(path));
    else found.push(parseYamlFile(path));
  }
  for (const p of [...(k.patches ?? []).map((x) => x.path), ...(k.patchesStrategicMerge ?? [])]) {
    if (p) found.push(parseYamlFile(need(p, 'patch')));
  }
  for (const g of [...(k.configMapGenerator ?? []), ...(k.secretGenerator ?? [])]) {
    for (const rel of [...(g.envs ?? []), ...(g.files ?? [])]) {
      const path = need(rel, 'generator source');
      found.push(/\.ya?ml$/.test(path) ? parseYamlFile(path) : path);
    }
  }
  return found;
}

function parseYamlFile(path: string): string {
  for (const doc of parseAllDocuments(readFileSync(path, 'utf8'))) {
    if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors[0]!.message}`);
  }
  return path;
}

/** The raw objects of a kustomization's resource files (no generators, patches or transformers). */
export function rawResources(dir: string): K8sObject[] {
  const k = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as Kustomization;
  return (k.resources ?? []).flatMap((rel) => {
    const path = join(dir, rel);
    if (statSync(path).isDirectory()) return rawResources(path);
    return parseAllDocuments(readFileSync(path, 'utf8'))
      .map((d) => d.toJSON() as K8sObject | null)
      .filter((o): o is K8sObject => o !== null);
  });
}

/** `KEY=value` lines of a kustomize env file (comments and blank lines skipped). */
export function readEnvFile(path: string): Record<string, string> {
  const entries = readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const i = l.indexOf('=');
      return [l.slice(0, i), l.slice(i + 1)] as const;
    });
  return Object.fromEntries(entries);
}
