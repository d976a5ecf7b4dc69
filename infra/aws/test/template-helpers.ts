import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp, type HoldfastInfraConfig, type HoldfastStacks, resolveConfig } from '../src/index.ts';

// biome-ignore lint/suspicious/noExplicitAny: CloudFormation properties are free-form JSON, checked by the tests.
export type Json = any;

export interface Resource {
  Type: string;
  Properties: Record<string, Json>;
  DeletionPolicy?: string;
  DependsOn?: string[];
}

export interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource?: unknown;
  Principal?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

export function resources(template: Template, type: string): [string, Resource][] {
  const all = template.toJSON().Resources as Record<string, Resource>;
  return Object.entries(all).filter(([, r]) => r.Type === type);
}

export function only<T>(items: T[], what: string): T {
  if (items.length !== 1) throw new Error(`expected exactly one ${what}, found ${items.length}`);
  return items[0]!;
}

export const list = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

/** IAM action pattern match (`*` and `?` wildcards, case-insensitive as IAM does). */
export function actionMatches(pattern: string, action: string): boolean {
  const regex = new RegExp(
    `^${pattern
      .split('')
      .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('')}$`,
    'i',
  );
  return regex.test(action);
}

export const grants = (statement: Statement, action: string): boolean =>
  statement.Effect === 'Allow' && list(statement.Action).some((p) => actionMatches(p, action));

/** Every identity-policy statement of a role: inline, attached AWS::IAM::Policy and managed policies. */
export function roleStatements(template: Template, roleLogicalId: string): Statement[] {
  const role = template.toJSON().Resources[roleLogicalId] as Resource;
  const inline = list(role.Properties.Policies).flatMap((p: Json) => list(p.PolicyDocument.Statement));
  const attached = [
    ...resources(template, 'AWS::IAM::Policy'),
    ...resources(template, 'AWS::IAM::ManagedPolicy'),
  ]
    .filter(([, p]) => list(p.Properties.Roles).some((r: Json) => r?.Ref === roleLogicalId))
    .flatMap(([, p]) => list(p.Properties.PolicyDocument.Statement));
  const managedArns = list(role.Properties.ManagedPolicyArns);
  if (managedArns.length > 0)
    throw new Error(`${roleLogicalId} has AWS managed policies: ${JSON.stringify(managedArns)}`);
  return [...inline, ...attached] as Statement[];
}

/** Logical id of the role with this RoleName. */
export function roleId(template: Template, name: string): string {
  return only(
    resources(template, 'AWS::IAM::Role').filter(([, r]) => r.Properties.RoleName === name),
    `role ${name}`,
  )[0];
}

/** Every identity-based statement in the template, whoever it is attached to. */
export function allIdentityStatements(template: Template): Statement[] {
  return [
    ...resources(template, 'AWS::IAM::Role').flatMap(([, r]) =>
      list(r.Properties.Policies).flatMap((p: Json) => list(p.PolicyDocument.Statement)),
    ),
    ...resources(template, 'AWS::IAM::Policy').flatMap(([, p]) =>
      list(p.Properties.PolicyDocument.Statement),
    ),
    ...resources(template, 'AWS::IAM::ManagedPolicy').flatMap(([, p]) =>
      list(p.Properties.PolicyDocument.Statement),
    ),
  ] as Statement[];
}

/** Build the app with these context values and return both stacks' templates. */
export async function synthesize(context: Record<string, unknown> = {}): Promise<Synthesized> {
  const app = new App({ context });
  const config = await resolveConfig((key) => app.node.tryGetContext(key), {});
  const stacks = buildApp(app, config);
  return {
    config,
    stacks,
    archive: Template.fromStack(stacks.archive),
    replica: Template.fromStack(stacks.replica),
  };
}

export interface Synthesized {
  config: HoldfastInfraConfig;
  stacks: HoldfastStacks;
  archive: Template;
  replica: Template;
}
