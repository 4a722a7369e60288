import type { Runner } from "../host/runner.ts";

export interface OptionSpec {
  type: "boolean" | "string";
  short?: string;
  /** Placeholder shown in help for a string option, e.g. HEX. */
  arg?: string;
  help: string;
}

export interface ArgSpec {
  name: string;
  optional?: boolean;
  /** Takes every further positional argument (set-services NAME [UNIT...]). */
  rest?: boolean;
  /** The rest is a command with its own flags: boxctl's options end where it begins (shell NAME [CMD...]). */
  command?: boolean;
  /** What shell completion offers for this argument. */
  complete?: "machine" | "image" | "file";
}

export type Opts = Record<string, string | boolean | undefined>;

export interface Ctx {
  verb: Verb;
  /** The runner every operation gets: the system's, or the printing one under --dry-run. */
  r: Runner;
  args: string[];
  opts: Opts;
}

export interface Verb {
  name: string;
  group: "container" | "image" | "other";
  args: ArgSpec[];
  summary: string;
  /** Paragraphs for `boxctl VERB --help` and the man page. */
  details?: string;
  options?: Record<string, OptionSpec>;
  /** Changes the system: needs root, and supports --dry-run. */
  mutates: boolean;
  /** A read verb: supports --json (and --no-legend for tables). */
  reads?: boolean;
  /** A mutating verb a script calls: --json prints what it changed (docs/json.md). */
  scripted?: boolean;
  /** Not shown in the verb list (e.g. `stop`, which only redirects). */
  hidden?: boolean;
  /** Returns the exit code; undefined means 0. */
  run?: (ctx: Ctx) => Promise<number | undefined>;
}
