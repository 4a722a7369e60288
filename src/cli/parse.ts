import { parseArgs } from "node:util";
import { UsageError } from "../base/errors.ts";
import { DEFAULT_BOOT_TIMEOUT_MS } from "../host/boot.ts";
import { closest } from "./suggest.ts";
import type { OptionSpec, Opts, Verb } from "./types.ts";

/** Options every verb accepts, by kind of verb. */
export const COMMON: Record<string, OptionSpec> = {
  help: { type: "boolean", short: "h", help: "Show this help and exit." },
  verbose: { type: "boolean", short: "v", help: "Print every command boxctl runs, to stderr." },
};
export const MUTATING: Record<string, OptionSpec> = {
  "dry-run": {
    type: "boolean",
    help: "Print the exact commands this would run, and change nothing.",
  },
};
/** For the mutating verbs a script calls: what changed, as one JSON document. */
export const SCRIPTED: Record<string, OptionSpec> = {
  json: {
    type: "boolean",
    help: "Print what changed, or what failed and where things stand, as JSON (docs/json.md).",
  },
};
export const READING: Record<string, OptionSpec> = {
  json: { type: "boolean", help: "Print JSON (schema in docs/json.md) instead of a table." },
  "no-legend": { type: "boolean", help: "Leave out the table's header and footer lines." },
};

export function optionsOf(verb: Verb): Record<string, OptionSpec> {
  return {
    ...(verb.options ?? {}),
    ...(verb.mutates ? MUTATING : {}),
    ...(verb.scripted ? SCRIPTED : {}),
    ...(verb.reads ? READING : {}),
    ...COMMON,
  };
}

export function usageLine(verb: Verb): string {
  const args = verb.args.map((a) => {
    const n = `${a.name}${a.rest ? "..." : ""}`;
    return a.optional ? `[${n}]` : n;
  });
  const hasOpts = Object.keys(optionsOf(verb)).length > 0;
  return ["boxctl", verb.name, ...args, ...(hasOpts ? ["[OPTIONS]"] : [])].join(" ");
}

export function parseVerbArgs(verb: Verb, argv: string[]): { args: string[]; opts: Opts } {
  const specs = optionsOf(verb);
  const options: Record<string, { type: "boolean" | "string"; short?: string }> = {};
  for (const [k, s] of Object.entries(specs))
    options[k] = s.short ? { type: s.type, short: s.short } : { type: s.type };
  const rest = verb.args.some((a) => a.rest);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    // For `shell NAME CMD...`, options end at the first positional after NAME.
    const split = verb.args.some((a) => a.command)
      ? splitRest(argv)
      : { head: argv, tail: [] as string[] };
    parsed = parseArgs({ args: split.head, options, allowPositionals: true, strict: true });
    parsed.positionals.push(...split.tail);
  } catch (e) {
    throw optionError(verb, e as Error & { code?: string }, Object.keys(specs));
  }
  const args = parsed.positionals;
  const opts = parsed.values as Opts;
  if (opts.help) return { args, opts };
  const required = verb.args.filter((a) => !a.optional).length;
  const max = rest ? Number.POSITIVE_INFINITY : verb.args.length;
  if (args.length < required) {
    const missing = verb.args[args.length]?.name ?? "an argument";
    throw new UsageError(`${verb.name}: missing ${missing}`, hint(verb));
  }
  if (args.length > max) {
    throw new UsageError(`${verb.name}: unexpected argument '${args[max]}'`, hint(verb));
  }
  return { args, opts };
}

/** node's parseArgs error, as boxctl says things: lower case, and a likely meant option. */
function optionError(verb: Verb, e: Error & { code?: string }, names: string[]): UsageError {
  const text = e.message.replace(/\. To specify.*$/s, "");
  const message = `${verb.name}: ${text.charAt(0).toLowerCase()}${text.slice(1)}`;
  const given = /^Unknown option '--?([^']*)'/.exec(text)?.[1];
  const meant =
    e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && given ? closest(given, names) : undefined;
  return new UsageError(message, meant ? `did you mean --${meant}? ${hint(verb)}` : hint(verb));
}

function hint(verb: Verb): string {
  return `usage: ${usageLine(verb)}; see 'boxctl ${verb.name} --help'`;
}

/** Splits off the command of `shell NAME CMD...` so its own flags stay its own. */
function splitRest(argv: string[]): { head: string[]; tail: string[] } {
  const dd = argv.indexOf("--");
  if (dd >= 0) return { head: argv.slice(0, dd), tail: argv.slice(dd + 1) };
  let positionals = 0;
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i]?.startsWith("-")) positionals++;
    if (positionals === 2) return { head: argv.slice(0, i), tail: argv.slice(i) };
  }
  return { head: argv, tail: [] };
}

/** --timeout SECONDS of the verbs that wait for a boot, in milliseconds. */
const MAX_TIMEOUT_S = 86_400;

export function parseTimeout(value: string | boolean | undefined, verb: string): number {
  if (value === undefined || typeof value === "boolean") return DEFAULT_BOOT_TIMEOUT_MS;
  const s = Number(value);
  if (!Number.isFinite(s) || s <= 0) {
    throw new UsageError(
      `${verb}: --timeout wants a number of seconds, not '${value}'`,
      `for example: boxctl ${verb} NAME --timeout 180`,
    );
  }
  // Node's timers take at most 2^31-1 ms (24.8 days); beyond, a timer fires at
  // once, so --timeout 1e9 killed a --check as soon as it started.
  if (s > MAX_TIMEOUT_S) {
    throw new UsageError(
      `${verb}: --timeout wants at most ${MAX_TIMEOUT_S} seconds (a day), not '${value}'`,
      `for example: boxctl ${verb} NAME --timeout 3600`,
    );
  }
  return s * 1000;
}
