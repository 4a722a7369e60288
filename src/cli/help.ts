import { optionsOf, usageLine } from "./parse.ts";
import type { Verb } from "./types.ts";

declare const BOXCTL_VERSION: string;
export const VERSION = typeof BOXCTL_VERSION === "string" ? BOXCTL_VERSION : "0.0.0-dev";

/** Each exit code, in a word for a verb's --help, and in full for boxctl --help and the man page. */
export const EXIT_CODES: [number, string, string][] = [
  [0, "success", "success"],
  [
    1,
    "operation failed",
    "the operation failed, or the machine or image is wrong (the message says which)",
  ],
  [
    2,
    "usage error",
    "usage error: unknown verb or option, missing or extra argument, invalid name or value",
  ],
  [
    130,
    "interrupted (Ctrl-C or SIGTERM)",
    "interrupted (Ctrl-C or SIGTERM); nothing is left half-done: a cutover or fallback went back to the instance it left",
  ],
];

const GROUPS: [Verb["group"], string][] = [
  ["container", "Container commands"],
  ["image", "Image and instance commands"],
  ["other", "Other commands"],
];

function pad(s: string, n: number): string {
  return s.length >= n ? `${s}  ` : s + " ".repeat(n - s.length);
}

function verbSynopsis(v: Verb): string {
  const arg = (a: Verb["args"][number]) => `${a.name}${a.rest ? "..." : ""}`;
  return [v.name, ...v.args.map((a) => (a.optional ? `[${arg(a)}]` : arg(a)))].join(" ");
}

export function globalHelp(verbs: readonly Verb[]): string {
  const shown = verbs.filter((v) => !v.hidden);
  const width = Math.max(...shown.map((v) => verbSynopsis(v).length)) + 2;
  const lines = [
    "boxctl - cut systemd-nspawn containers over to new images, with a way back",
    "",
    "Usage: boxctl VERB [ARGS] [OPTIONS]",
    "       boxctl help VERB | boxctl VERB --help",
    "",
  ];
  for (const [group, title] of GROUPS) {
    lines.push(`${title}:`);
    for (const v of shown.filter((x) => x.group === group))
      lines.push(`  ${pad(verbSynopsis(v), width)}${v.summary}`);
    lines.push("");
  }
  lines.push("Options:", "  -h, --help     Show help", "  --version      Show the version", "");
  lines.push("Exit status:");
  for (const [code, , text] of EXIT_CODES) lines.push(`  ${pad(String(code), 5)}${text}`);
  lines.push(
    "",
    "Images live in /var/lib/boxctl; each container's root is mounted at /var/lib/machines/NAME.",
  );
  return `${lines.join("\n")}\n`;
}

export function optionLines(v: Verb): [string, string][] {
  return Object.entries(optionsOf(v)).map(([name, o]) => [
    `${o.short ? `-${o.short}, ` : "    "}--${name}${o.type === "string" ? ` ${o.arg ?? "VALUE"}` : ""}`,
    o.help,
  ]);
}

export function verbHelp(v: Verb): string {
  const lines = [`Usage: ${usageLine(v)}`, "", v.summary];
  if (v.details) lines.push("", v.details.trim());
  const opts = optionLines(v);
  const width = Math.max(...opts.map(([l]) => l.length)) + 2;
  lines.push("", "Options:");
  for (const [l, h] of opts) lines.push(`  ${pad(l, width)}${h}`);
  // A verb that changes something can be interrupted; one that reads cannot be left half-done.
  const codes = EXIT_CODES.filter(([code]) => v.mutates || code !== 130);
  lines.push("", `Exit status: ${codes.map(([code, word]) => `${code} ${word}`).join(", ")}.`);
  return `${lines.join("\n")}\n`;
}
