/** Plain-text tables and number formatting for benchmark reports. */

export interface Column {
  header: string;
  /** Text columns align left, numbers right (default 'right'). */
  align?: 'left' | 'right';
}

/** The columns of a report: the first (what each row is) aligned left, the figures right. */
export function columnsOf(first: string, ...figures: string[]): Column[] {
  return [{ header: first, align: 'left' }, ...figures.map((header) => ({ header }))];
}

/** Lays out `rows` under `columns`, padded to the widest cell, with a rule under the header. */
export function formatTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((column, i) =>
    Math.max(column.header.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: readonly string[]): string =>
    columns
      .map((column, i) => {
        const cell = cells[i] ?? '';
        return column.align === 'left' ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!);
      })
      .join('  ')
      .trimEnd();
  const header = line(columns.map((column) => column.header));
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [header, rule, ...rows.map(line)].join('\n');
}

/** A number with about three significant digits and a thousands separator: 12,345 / 123 / 1.23. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A large count in short form: 950 / 12.3 k / 4.56 M / 1.20 G. */
export function formatCount(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${(value / 1e9).toFixed(2)} G`;
  if (abs >= 1e6) return `${(value / 1e6).toFixed(2)} M`;
  if (abs >= 1e4) return `${(value / 1e3).toFixed(1)} k`;
  return value.toFixed(0);
}

/** A ratio as a multiplier: 1.23x. */
export function formatRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}x` : '-';
}

/** A byte size in binary units: 32 B / 1 KiB / 64 KiB / 1 MiB. */
export function formatSize(bytes: number): string {
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes / (1 << 20)} MiB`;
  if (bytes >= 1 << 10 && bytes % (1 << 10) === 0) return `${bytes / (1 << 10)} KiB`;
  return `${bytes} B`;
}

/** A fraction as a percentage: 0.042 -> 4.2%. */
export function formatPercent(fraction: number): string {
  return `${(fraction * 100).toFixed(1)}%`;
}
