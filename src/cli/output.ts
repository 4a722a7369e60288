// Tables and JSON for the read verbs. Tables are aligned, with a legend
// line unless --no-legend; colour only on a TTY and never with NO_COLOR.
import pc from "picocolors";
import type { BoxError } from "../base/errors.ts";
import type { Ctx, Opts } from "./types.ts";

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
  if (opts.json) writeJson(json());
  else process.stdout.write(table(opts["no-legend"] !== true));
}

/** One JSON document on stdout, with the version every document carries. */
export function writeJson(doc: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ version: JSON_VERSION, ...doc }, null, 2)}\n`);
}

/**
 * What a mutating verb achieved: with --json the document (doc says what
 * changed), else a line each. After a dry run, which achieved nothing, nothing.
 */
export function done(ctx: Ctx, doc: Record<string, unknown>, ...lines: string[]): number {
  if (ctx.r.dryRun) return 0;
  if (ctx.opts.json) writeJson({ verb: ctx.verb.name, ...doc, error: null });
  else for (const l of lines) process.stdout.write(`${l}\n`);
  return 0;
}

/** A failed mutating verb's --json: what failed, and where things stand (the error's data). */
export function failedJson(ctx: { verb: { name: string } }, e: BoxError): void {
  writeJson({
    verb: ctx.verb.name,
    changed: false,
    ...e.data,
    error: { message: e.message, hint: e.hint ?? null },
  });
}
