export * from './compose.ts';
export * from './dockerfile.ts';
export * from './environment.ts';
export * from './k8s-schema.ts';
export * from './kustomize.ts';
export * from './paths.ts';
