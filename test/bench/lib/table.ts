import type { ScenarioResult } from './types.ts';

const num = (value: number, unit: string): string => {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  const text = value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  return unit === '/s' ? `${text}/s` : `${text} ${unit}`;
};

const ratio = (r: number | undefined) => {
  if (r === undefined) return '';
  if (!Number.isFinite(r)) return String(r);
  return `${r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(2) : r.toFixed(3)}x`;
};

/** The readable form: one row per figure, with its baseline, the ratio and the target. */
export function formatTable(results: readonly ScenarioResult[]): string {
  const header = [
    '#',
    'scenario',
    'figure',
    'value',
    'baseline (same run)',
    'baseline value',
    'ratio',
    'target',
    'met',
  ];
  const rows: string[][] = [];
  for (const s of results) {
    if (s.status !== 'ok') {
      rows.push([
        String(s.number),
        s.id,
        `${s.status.toUpperCase()}: ${s.note ?? ''}`,
        '',
        '',
        '',
        '',
        '',
        '',
      ]);
      continue;
    }
    for (const f of s.figures) {
      rows.push([
        String(s.number),
        s.id,
        f.name,
        num(f.value, f.unit),
        f.baseline?.name ?? '',
        f.baseline ? num(f.baseline.value, f.baseline.unit) : '',
        ratio(f.ratio),
        f.target ?? '',
        f.met === undefined ? '' : f.met ? 'yes' : 'NO',
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const right = new Set([3, 5, 6]);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The same table as Markdown, for test/bench/README.md. */
export function formatMarkdown(results: readonly ScenarioResult[]): string {
  const out = [
    '| # | figure | value | baseline (same run) | baseline value | ratio | target | met |',
    '| --- | --- | ---: | --- | ---: | ---: | --- | --- |',
  ];
  for (const s of results) {
    if (s.status !== 'ok') {
      out.push(`| ${s.number} | ${s.id}: **${s.status}** (${s.note ?? ''}) | | | | | | |`);
      continue;
    }
    for (const f of s.figures) {
      out.push(
        `| ${s.number} | ${f.name} | ${num(f.value, f.unit)} | ${f.baseline?.name ?? ''} | ${f.baseline ? num(f.baseline.value, f.baseline.unit) : ''} | ${ratio(f.ratio)} | ${f.target ?? ''} | ${f.met === undefined ? '' : f.met ? 'yes' : '**no**'} |`,
      );
    }
  }
  return out.join('\n');
}
