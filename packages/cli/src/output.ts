/** Every reporting command prints JSON with `--json`, and a readable form otherwise. */
export function print<T>(opts: { json?: boolean }, value: T, human: (value: T) => string): void {
  process.stdout.write(`${opts.json ? JSON.stringify(value, null, 2) : human(value)}\n`);
}
