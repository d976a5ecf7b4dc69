import { defineConfig } from 'vitest/config';

// Real Redis, a loopback HTTPS server, a real archiver and a child process: slower than unit tests.
export default defineConfig({ test: { testTimeout: 60_000, hookTimeout: 30_000 } });
