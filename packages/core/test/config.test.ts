import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/index.ts';

describe('loadConfig', () => {
  it('falls back to the embedded defaults when nothing is set', () => {
    const config = loadConfig({});
    expect(config.redisUrl).toBeUndefined();
    expect(config.store).toBe('local:./.holdfast/store');
    expect(config.channels.email.transport.kind).toBe('outbox');
    expect(config.port).toBe(8080);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("reads the circuit breakers' thresholds, 50% of at least 10 calls unless set", () => {
    expect(loadConfig({})).toMatchObject({
      breakerErrorPercent: 50,
      breakerMinCalls: 10,
      breakerResetMs: 30_000,
    });
    expect(
      loadConfig({ HOLDFAST_BREAKER_ERROR_PERCENT: '80', HOLDFAST_BREAKER_MIN_CALLS: '25' }),
    ).toMatchObject({ breakerErrorPercent: 80, breakerMinCalls: 25 });
  });

  it('bounds each spool to 250000 unacknowledged events unless HOLDFAST_SPOOL_MAX_BACKLOG says otherwise', () => {
    expect(loadConfig({}).spoolMaxBacklog).toBe(250_000);
    expect(loadConfig({ HOLDFAST_SPOOL_MAX_BACKLOG: '1000000' }).spoolMaxBacklog).toBe(1_000_000);
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ REDIS_URL: '', PORT: '' }).port).toBe(8080);
  });

  it('reads provider transports and S3 stores', () => {
    const config = loadConfig({
      REDIS_URL: 'redis://127.0.0.1:7000',
      HOLDFAST_STORE: 's3://archive-bucket',
      HOLDFAST_EMAIL_TRANSPORT: 'ses',
      HOLDFAST_S3_ENDPOINT: 'http://127.0.0.1:9000',
    });
    expect(config.channels.email.transport).toEqual({ kind: 'provider' });
    expect(config.store).toBe('s3://archive-bucket');
  });

  it.each([
    ['REDIS_URL', 'localhost:6379', /REDIS_URL: must be a redis:\/\//],
    ['HOLDFAST_STORE', 'ftp://x', /HOLDFAST_STORE: must be "local:<dir>" or "s3:\/\/<bucket>"/],
    ['HOLDFAST_EMAIL_TRANSPORT', 'smtp', /HOLDFAST_EMAIL_TRANSPORT: must be "ses" or "outbox:<dir>"/],
    ['PORT', 'eighty', /PORT:/],
    ['HOLDFAST_S3_ENDPOINT', 'not a url', /HOLDFAST_S3_ENDPOINT:/],
    ['HOLDFAST_BREAKER_ERROR_PERCENT', '150', /HOLDFAST_BREAKER_ERROR_PERCENT:/],
    ['HOLDFAST_BREAKER_ERROR_PERCENT', '0', /HOLDFAST_BREAKER_ERROR_PERCENT:/],
    ['HOLDFAST_BREAKER_MIN_CALLS', '0', /HOLDFAST_BREAKER_MIN_CALLS:/],
    ['HOLDFAST_SPOOL_MAX_BACKLOG', '0', /HOLDFAST_SPOOL_MAX_BACKLOG:/],
    ['HOLDFAST_SPOOL_MAX_BACKLOG', 'lots', /HOLDFAST_SPOOL_MAX_BACKLOG:/],
  ])('names the bad variable %s', (name, value, message) => {
    let caught: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).variable).toBe(name);
    expect((caught as ConfigError).message).toMatch(message);
  });
});
