import { addDuration, durationDays, parseDuration, RetentionPolicy } from '@holdfast/core';
import { describe, expect, it } from 'vitest';
import {
  calendarSafeDays,
  DEFAULT_RECORD_CLASSES,
  defaultRetentionDays,
  PLACEHOLDER_ACCOUNT,
  resolveConfig,
} from '../src/index.ts';

const from = (values: Record<string, unknown>) => (key: string) => values[key];

describe('resolveConfig', () => {
  it('synthesizes without an AWS account: placeholders when neither context nor CLI environment say', async () => {
    const config = await resolveConfig(from({}), {});
    expect(config.account).toBe(PLACEHOLDER_ACCOUNT);
    expect(config.region).toBe('us-east-1');
    expect(config.replicaRegion).toBe('us-west-2');
    expect(config.recordClasses).toBe(DEFAULT_RECORD_CLASSES);
    expect(config.policy.source).toBe('built-in defaults');
  });

  it('takes the account and Region the CDK CLI resolved, and context over both', async () => {
    const env = { CDK_DEFAULT_ACCOUNT: '210987654321', CDK_DEFAULT_REGION: 'eu-central-1' };
    expect(await resolveConfig(from({ replicaRegion: 'eu-west-1' }), env)).toMatchObject({
      account: '210987654321',
      region: 'eu-central-1',
    });
    expect(await resolveConfig(from({ account: '111122223333', region: 'eu-west-1' }), env)).toMatchObject({
      account: '111122223333',
      region: 'eu-west-1',
    });
  });

  it.each([
    [{ replicaRegion: 'us-east-1' }, /replicaRegion: must differ from region/],
    [{ account: '12345' }, /account: must be a 12-digit/],
    [{ region: 'moon-1' }, /region: "moon-1" is not an AWS Region/],
    [
      { recordClasses: '{"messages": ["no-such-category"]}' },
      /category "no-such-category" is not in the retention policy/,
    ],
    [{ recordClasses: '{"Messages": ["contract"]}' }, /recordClasses.Messages/],
    [{ recordClasses: 'not json' }, /recordClasses: must be JSON/],
    [{ namePrefix: 'holdfast-archive-with-a-long-prefix' }, /longer than 63 characters/],
    [{ deepArchiveAfterDays: '0' }, /deepArchiveAfterDays: must be a whole number/],
  ])('refuses %j with an error naming the setting', async (context, message) => {
    await expect(resolveConfig(from(context), {})).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_INFRA_CONFIG',
      message: expect.stringMatching(message),
    });
  });
});

describe('default retention days', () => {
  it('is never shorter than the calendar period the archiver computes, nor than durationDays', () => {
    expect(calendarSafeDays(parseDuration('7y'))).toBe(2557);
    expect(calendarSafeDays(parseDuration('3y'))).toBe(1096);
    expect(calendarSafeDays(parseDuration('90d'))).toBe(90);
    expect(calendarSafeDays(parseDuration('18m'))).toBe(550); // month-end overflow rolls forward
    for (const text of ['7y', '3y', '18m', 'P1Y6M', '6w']) {
      const duration = parseDuration(text);
      const safe = calendarSafeDays(duration);
      expect(safe).toBeGreaterThanOrEqual(durationDays(duration));
      for (let day = 0; day < 3 * 366; day += 7) {
        const start = new Date(Date.UTC(2023, 0, 1) + day * 86_400_000);
        expect((addDuration(start, duration).getTime() - start.getTime()) / 86_400_000).toBeLessThanOrEqual(
          safe,
        );
      }
    }
  });

  it('takes the longest category of the class', () => {
    const policy = new RetentionPolicy({ a: '3y', b: '7y' }, 'test');
    expect(defaultRetentionDays(policy, { name: 'x', categories: ['a'] })).toBe(1096);
    expect(defaultRetentionDays(policy, { name: 'x', categories: ['a', 'b'] })).toBe(2557);
  });

  it('maps every default record class to categories of the built-in policy', () => {
    const policy = RetentionPolicy.defaults();
    for (const c of DEFAULT_RECORD_CLASSES) {
      expect(defaultRetentionDays(policy, c)).toBeGreaterThanOrEqual(365);
    }
  });
});
