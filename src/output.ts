// Tables and JSON for the read verbs. Tables are aligned, with a legend
// line unless --no-legend; colour only on a TTY and never with NO_COLOR.
import pc from "picocolors";
import type { Opts } from "./cli/types.ts";

export const JSON_VERSION = 1;

export const useColor = (): boolean =>
  Boolean(process.stdout.isTTY) && !("NO_COLOR" in process.env) && process.env.TERM !== "dumb";

export const color = {
  bold: (s: string) => (useColor() ? pc.bold(s) : s),
  green: (s: string) => (useColor() ? pc.green(s) : s),
  red: (s: string) => (useColor() ? pc.red(s) : s),
  yellow: (s: string) => (useColor() ? pc.yellow(s) : s),
  dim: (s: string) => (useColor() ? pc.dim(s) : s),
};

/** Visible width, ignoring colour escapes. */
function width(s: string): number {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes are the point
  return s.replace(/\x1b\[[0-9;]*m/g, "").length;
}

export function renderTable(
  headers: string[],
  rows: string[][],
  opts: { legend?: boolean; footer?: string } = {},
): string {
  const legend = opts.legend ?? true;
  const widths = headers.map((h, i) =>
    Math.max(legend ? h.length : 0, ...rows.map((r) => width(r[i] ?? ""))),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + " ".repeat((widths[i] ?? 0) - width(c))))
      .join("  ")
      .trimEnd();
  const out: string[] = [];
  if (legend) out.push(color.bold(line(headers)));
  for (const r of rows) out.push(line(r));
  if (legend && opts.footer !== undefined) out.push("", opts.footer);
  return out.length ? `${out.join("\n")}\n` : "";
}

/** Prints a read verb's result: JSON with a version field, or the table. */
export function emit(
  opts: Opts,
  json: () => Record<string, unknown>,
  table: (legend: boolean) => string,
): void {
  if (opts.json)
    process.stdout.write(`${JSON.stringify({ version: JSON_VERSION, ...json() }, null, 2)}\n`);
  else process.stdout.write(table(opts["no-legend"] !== true));
}

export function humanBytes(n: number): string {
  const units = ["B", "K", "M", "G", "T"];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return i === 0 ? `${n}B` : `${x.toFixed(x < 10 ? 1 : 0)}${units[i]}`;
}

export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return "-";
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}min ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}
