import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { COMPOSE_FILE } from './paths.ts';

export interface ComposeService {
  image?: string;
  build?: { context?: string; dockerfile?: string; args?: Record<string, string> | string[] };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (string | Record<string, unknown>)[];
  volumes?: (string | Record<string, unknown>)[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[] };
  stop_grace_period?: string;
  stop_signal?: string;
  restart?: string;
}

export interface ComposeFile {
  name?: string;
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
  [extension: `x-${string}`]: unknown;
}

/** The compose file as Compose reads it: YAML merge keys (`<<: *anchor`) resolved. */
export function loadCompose(path = COMPOSE_FILE): ComposeFile {
  return parse(readFileSync(path, 'utf8'), { merge: true }) as ComposeFile;
}

/**
 * Compose variable interpolation: `${VAR}`, `${VAR:-default}` (unset or empty), `${VAR-default}`
 * (unset), `$VAR`, and `$$` for a literal `$`. `env` stands for the shell and `.env` file.
 */
export function interpolate(value: string, env: Record<string, string | undefined> = {}): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (
      match,
      braced: string | undefined,
      op: string | undefined,
      fallback: string | undefined,
      bare: string | undefined,
    ) => {
      if (match === '$$') return '$';
      const name = (braced ?? bare)!;
      const current = env[name];
      if (op === ':-') return current ? current : (fallback ?? '');
      if (op === '-') return current !== undefined ? current : (fallback ?? '');
      return current ?? '';
    },
  );
}

/** A service's environment as a map (list form `KEY=value` accepted), interpolated. */
export function serviceEnvironment(
  service: ComposeService,
  env: Record<string, string | undefined> = {},
): Record<string, string> {
  const raw = service.environment ?? {};
  const entries: [string, string][] = Array.isArray(raw)
    ? raw.map((line) => {
        const i = line.indexOf('=');
        return i < 0 ? [line, ''] : [line.slice(0, i), line.slice(i + 1)];
      })
    : Object.entries(raw).map(([k, v]) => [k, v === null ? '' : String(v)]);
  return Object.fromEntries(entries.map(([k, v]) => [k, interpolate(v, env)]));
}

/** Compose services built from the Holdfast Dockerfile, by their SERVICE build argument. */
export function holdfastServices(compose: ComposeFile): Map<string, [string, ComposeService]> {
  const found = new Map<string, [string, ComposeService]>();
  for (const [name, service] of Object.entries(compose.services)) {
    const args = service.build?.args;
    const arg = Array.isArray(args)
      ? args.find((a) => a.startsWith('SERVICE='))?.slice('SERVICE='.length)
      : args?.SERVICE;
    if (arg) found.set(arg, [name, service]);
  }
  return found;
}
