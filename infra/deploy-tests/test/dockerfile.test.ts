import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validate } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';
import {
  DOCKERIGNORE,
  execForm,
  globalArgs,
  instructionsText,
  keyword,
  REPO_ROOT,
  raw,
  readDockerfile,
  SERVICE_ARG,
  stages,
  text,
} from '../src/index.ts';

const content = readDockerfile();
const all = stages(content);
const runtime = all.at(-1)!;
const build = all.find((s) => s.name === 'build')!;
const runs = (stage: typeof runtime) => stage.instructions.filter((i) => keyword(i) === 'RUN').map(text);

describe('Dockerfile', () => {
  it('passes the dockerfile-utils linter (the Docker language server’s validator) with no finding', () => {
    expect(validate(content).map((d) => `line ${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
  });

  it('is multi-stage: a build stage with pnpm, a runtime stage that copies only the result', () => {
    expect(all.map((s) => s.name)).toEqual(['build', 'runtime']);
    expect(runs(runtime).join('\n')).not.toMatch(/pnpm|npm install/);
    const copies = runtime.instructions.filter((i) => keyword(i) === 'COPY').map(raw);
    expect(copies).toEqual(['COPY --from=build /app /app']);
  });

  it('installs only the service’s production dependency closure, keeping the workspace layout', () => {
    const install = runs(build).find((r) => r.includes('pnpm install'))!;
    expect(install).toMatch(/--prod\b/);
    expect(install).toMatch(/--frozen-lockfile\b/);
    // --filter-prod: devDependencies do not pull workspace packages (and their deps) into the image.
    expect(install).toMatch(/--filter-prod "@holdfast\/\$\{SERVICE\}\.\.\."/);
    // The store was filled by `pnpm fetch`; the virtual store it made (every importer) is discarded.
    expect(install).toMatch(/rm -rf node_modules/);
    expect(instructionsText(content)).not.toMatch(/pnpm deploy/);
  });

  it('runs as a numeric non-root user, node as PID 1 in exec form, stopped by SIGTERM', () => {
    const user = runtime.instructions
      .filter((i) => keyword(i) === 'USER')
      .map(text)
      .at(-1);
    expect(user).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    const entrypoint = runtime.instructions.filter((i) => keyword(i) === 'ENTRYPOINT').at(-1)!;
    expect(execForm(entrypoint)).toEqual(['node', 'src/main.ts']);
    for (const i of runtime.instructions.filter((x) => ['CMD', 'ENTRYPOINT'].includes(keyword(x)))) {
      expect(execForm(i), `${keyword(i)} ${text(i)} must be JSON (exec form)`).toBeDefined();
    }
    expect(runtime.instructions.filter((i) => keyword(i) === 'STOPSIGNAL').map(text)).toEqual(['SIGTERM']);
    // The service's own directory, so `src/main.ts` resolves its workspace packages through symlinks.
    expect(runtime.instructions.filter((i) => keyword(i) === 'WORKDIR').map(text)).toEqual([
      `/app/services/${SERVICE_ARG}`,
    ]);
  });

  it('follows the hadolint rules that apply here (tagged base images, COPY not ADD, pinned installs)', () => {
    for (const stage of all) {
      // DL3006/DL3007: a tag, never latest.
      expect(stage.image).toMatch(/^node:\$\{NODE_VERSION\}-bookworm-slim$/);
      for (const i of stage.instructions) {
        expect(keyword(i), 'DL3020: use COPY').not.toBe('ADD');
        // DL3016: npm packages pinned.
        if (keyword(i) === 'RUN' && /\bnpm install/.test(text(i)))
          expect(text(i)).toMatch(/pnpm@\$\{PNPM_VERSION\}/);
        // DL4006: no pipes without pipefail.
        if (keyword(i) === 'RUN') expect(text(i)).not.toMatch(/[^|]\|[^|]/);
        // DL3004: no sudo.
        expect(text(i)).not.toMatch(/\bsudo\b/);
      }
    }
    expect(runtime.instructions.map(keyword)).toContain('USER'); // DL3002: last USER not root
  });

  it('builds on the Node and pnpm versions of scripts/toolchain.sh', () => {
    const toolchain = readFileSync(join(REPO_ROOT, 'scripts', 'toolchain.sh'), 'utf8');
    const node = /HOLDFAST_NODE_VERSION:-([\d.]+)/.exec(toolchain)?.[1];
    const pnpm = /HOLDFAST_PNPM_VERSION:-([\d.]+)/.exec(toolchain)?.[1];
    expect(globalArgs(content)).toMatchObject({ NODE_VERSION: node, PNPM_VERSION: pnpm });
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
    expect(pkg.packageManager).toBe(`pnpm@${pnpm}`);
  });

  it('sets the spool under the one writable directory, owned by the runtime user', () => {
    const env = runtime.instructions
      .filter((i) => keyword(i) === 'ENV')
      .map(text)
      .join(' ');
    expect(env).toMatch(/HOLDFAST_SPOOL_DIR=\/var\/lib\/holdfast\/spool/);
    expect(runs(runtime).join('\n')).toMatch(/chown -R 1000:1000 \/var\/lib\/holdfast/);
  });

  it('has a .dockerignore beside it that keeps node_modules, secrets and VCS data out of the context', () => {
    const patterns = readFileSync(DOCKERIGNORE, 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    for (const p of ['**/node_modules', '.git', '**/.env', '**/.holdfast', 'infra'])
      expect(patterns).toContain(p);
  });
});
