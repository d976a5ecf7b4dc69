import { readFileSync } from 'node:fs';

const root = new URL('../fixtures/', import.meta.url);

/** A fixture's exact bytes as text (sign these, not a re-serialisation). */
export function fixtureText(name: string): string {
  return readFileSync(new URL(name, root), 'utf8');
}

export function fixture<T = unknown>(name: string): T {
  return JSON.parse(fixtureText(name)) as T;
}

/** Twilio fixtures are form parameters: string values only. */
export function twilioFixture(name: string): Record<string, string> {
  return fixture<Record<string, string>>(`twilio/${name}`);
}
