import { beforeAll, describe, expect, it } from 'vitest';
import {
  grants,
  list,
  only,
  resources,
  type Statement,
  type Synthesized,
  synthesize,
} from './template-helpers.ts';

let app: Synthesized;
beforeAll(async () => {
  app = await synthesize();
});

const CRYPTO_ACTIONS = [
  'kms:Encrypt',
  'kms:Decrypt',
  'kms:ReEncryptFrom',
  'kms:ReEncryptTo',
  'kms:GenerateDataKey',
  'kms:GenerateDataKeyWithoutPlaintext',
];

const role = (name: string) => `arn:aws:iam::${app.config.account}:role/holdfast-${name}`;

function keyPolicy(which: 'archive' | 'replica'): Statement[] {
  const [, key] = only(resources(app[which], 'AWS::KMS::Key'), 'KMS key');
  return list(key.Properties.KeyPolicy.Statement);
}

/** Role ARNs allowed `action` by the key policy (every allow is conditioned on aws:PrincipalArn). */
function principalsAllowed(which: 'archive' | 'replica', action: string): string[] {
  return keyPolicy(which)
    .filter((s) => grants(s, action))
    .flatMap((s) => list(s.Condition?.ArnEquals?.['aws:PrincipalArn'] as string | string[]))
    .sort();
}

describe.each(['archive', 'replica'] as const)('archive key (%s stack)', (which) => {
  const region = () => (which === 'archive' ? app.config.region : app.config.replicaRegion);

  it('is a symmetric customer-managed key with rotation on, kept on stack deletion, aliased', () => {
    const [keyId, key] = only(resources(app[which], 'AWS::KMS::Key'), 'KMS key');
    expect(key.Properties).toMatchObject({
      EnableKeyRotation: true,
      Enabled: true,
      KeySpec: 'SYMMETRIC_DEFAULT',
      KeyUsage: 'ENCRYPT_DECRYPT',
    });
    expect(key.DeletionPolicy).toBe('Retain');
    app[which].hasResourceProperties('AWS::KMS::Alias', {
      AliasName: 'alias/holdfast-archive',
      TargetKeyId: { Ref: keyId },
    });
  });

  it('lets the account administer the key but not use it', () => {
    const admin = only(
      keyPolicy(which).filter((s) => s.Sid === 'KeyAdministrationWithoutUse'),
      'administration statement',
    );
    expect(admin.Principal).toEqual({ AWS: `arn:aws:iam::${app.config.account}:root` });
    expect(admin.Condition).toBeUndefined();
    for (const action of CRYPTO_ACTIONS) expect(grants(admin, action), action).toBe(false);
  });

  it('scopes every cryptographic use to named roles, through S3 in this Region, in this account', () => {
    for (const statement of keyPolicy(which)) {
      if (!CRYPTO_ACTIONS.some((a) => grants(statement, a))) continue;
      expect(statement.Principal).toEqual({ AWS: `arn:aws:iam::${app.config.account}:root` });
      const roles = list(statement.Condition?.ArnEquals?.['aws:PrincipalArn'] as string[]);
      expect(roles.length).toBeGreaterThan(0);
      for (const arn of roles) expect(arn).toMatch(/^arn:aws:iam::\d{12}:role\/holdfast-[a-z-]+$/);
      expect(statement.Condition?.StringEquals).toEqual({
        'kms:ViaService': `s3.${region()}.amazonaws.com`,
        'kms:CallerAccount': app.config.account,
      });
    }
    // Nothing grants kms:* or any use to a principal other than the account (with the role condition).
    for (const statement of keyPolicy(which)) {
      expect(list(statement.Action)).not.toContain('kms:*');
      expect(statement.Effect).toBe('Allow');
    }
  });
});

describe('who may use which key', () => {
  it('primary key: writers generate data keys, every service and the replication role decrypt', () => {
    expect(principalsAllowed('archive', 'kms:GenerateDataKey')).toEqual(
      [role('archiver'), role('ingest'), role('media-fetcher')].sort(),
    );
    expect(principalsAllowed('archive', 'kms:Decrypt')).toEqual(
      [role('archiver'), role('ingest'), role('media-fetcher'), role('sender'), role('replication')].sort(),
    );
    expect(principalsAllowed('archive', 'kms:Encrypt')).toEqual([]);
  });

  it('replica key: only replication encrypts, services decrypt (disaster-recovery reads)', () => {
    expect(principalsAllowed('replica', 'kms:Encrypt')).toEqual([role('replication')]);
    expect(principalsAllowed('replica', 'kms:GenerateDataKey')).toEqual([role('replication')]);
    expect(principalsAllowed('replica', 'kms:Decrypt')).toEqual(
      [role('archiver'), role('ingest'), role('media-fetcher'), role('sender')].sort(),
    );
  });

  it('operator roles (legal hold, disposal) cannot use either key', () => {
    for (const which of ['archive', 'replica'] as const) {
      for (const action of CRYPTO_ACTIONS) {
        expect(principalsAllowed(which, action)).not.toContain(role('legal-hold'));
        expect(principalsAllowed(which, action)).not.toContain(role('disposal'));
      }
    }
  });
});
