import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
export const INFRA_DIR = join(REPO_ROOT, 'infra');
export const DOCKERFILE = join(INFRA_DIR, 'docker', 'Dockerfile');
export const DOCKERIGNORE = join(INFRA_DIR, 'docker', 'Dockerfile.dockerignore');
export const COMPOSE_FILE = join(INFRA_DIR, 'docker', 'docker-compose.yml');
export const K8S_BASE = join(INFRA_DIR, 'k8s', 'base');
export const K8S_PRODUCTION = join(INFRA_DIR, 'k8s', 'overlays', 'production');

/** Deployable services (DESIGN.md); each is `services/<name>`, package `@holdfast/<name>`. */
export const SERVICES = Object.freeze(['ingest', 'archiver', 'sender', 'media-fetcher'] as const);
export type ServiceName = (typeof SERVICES)[number];
/** Services that consume queues and scale on their backlog. */
export const WORKERS = Object.freeze(['archiver', 'sender', 'media-fetcher'] as const);

/** The queues each worker consumes (BullMQ prefix `holdfast`); send-sms/send-whatsapp are coming. */
export const WORKER_QUEUES: Readonly<Record<(typeof WORKERS)[number], readonly string[]>> = Object.freeze({
  archiver: ['archive'],
  sender: ['send-email', 'send-sms', 'send-whatsapp'],
  'media-fetcher': ['media'],
});
