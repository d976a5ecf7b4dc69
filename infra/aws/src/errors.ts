import { HoldfastError } from '@holdfast/core';

/** A deployment setting (CDK context or environment) is missing or malformed. */
export class InfraConfigError extends HoldfastError {
  constructor(setting: string, message: string) {
    super('HOLDFAST_ERR_INFRA_CONFIG', `${setting}: ${message}`);
  }
}
