interface Family {
  help: string | undefined;
  type: string | undefined;
  samples: string[];
}

/**
 * Join Prometheus text expositions into one valid exposition. BullMQ writes `# HELP`/`# TYPE`
 * for `bullmq_job_count` once per queue, and a scraper refuses a metric family declared twice or
 * whose samples are not contiguous: each family is written once here, with all its samples.
 */
export function mergePrometheusText(parts: readonly string[]): string {
  const families = new Map<string, Family>();
  const familyOf = (name: string): Family => {
    let family = families.get(name);
    if (!family) {
      family = { help: undefined, type: undefined, samples: [] };
      families.set(name, family);
    }
    return family;
  };
  for (const part of parts) {
    // Samples belong to the family declared last in their own part (a histogram's `_bucket`,
    // `_sum` and `_count` follow its `# TYPE`).
    let current: string | undefined;
    for (const raw of part.split('\n')) {
      const line = raw.trimEnd();
      if (!line) continue;
      const declared = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (declared) {
        const [, kind, name, rest = ''] = declared;
        current = name!;
        const family = familyOf(current);
        if (kind === 'HELP') family.help ??= rest;
        else family.type ??= rest;
        continue;
      }
      if (line.startsWith('#')) continue;
      const name = /^[^{\s]+/.exec(line)?.[0] ?? line;
      familyOf(current && name.startsWith(current) ? current : name).samples.push(line);
    }
  }
  const out: string[] = [];
  for (const [name, family] of families) {
    if (family.help !== undefined) out.push(`# HELP ${name} ${family.help}`);
    if (family.type !== undefined) out.push(`# TYPE ${name} ${family.type}`);
    out.push(...family.samples);
  }
  return `${out.join('\n')}\n`;
}
