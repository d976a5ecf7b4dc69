/**
 * Every Holdfast error carries a stable `code` (`HOLDFAST_ERR_…`). Callers branch on the code,
 * never on the message; the message names what was wrong for the person reading it.
 */
export class HoldfastError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export interface ValidationIssue {
  /** Dotted path of the offending field, e.g. `to.0` or `attachments.1.content`. */
  path: string;
  message: string;
}

/** Input failed validation at a boundary; nothing was written. */
export class ValidationError extends HoldfastError {
  readonly issues: readonly ValidationIssue[];

  constructor(what: string, issues: readonly ValidationIssue[]) {
    const detail = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
    super('HOLDFAST_ERR_VALIDATION', `invalid ${what}: ${detail}`);
    this.issues = Object.freeze([...issues]);
  }
}

/** A configuration value (usually an environment variable) is missing or malformed. */
export class ConfigError extends HoldfastError {
  readonly variable: string;

  constructor(variable: string, message: string) {
    super('HOLDFAST_ERR_CONFIG', `${variable}: ${message}`);
    this.variable = variable;
  }
}

/** The retention policy file or a category lookup is invalid. */
export class RetentionPolicyError extends HoldfastError {
  constructor(message: string) {
    super('HOLDFAST_ERR_RETENTION_POLICY', message);
  }
}
