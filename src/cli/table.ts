// The one table of verbs. Each group's entries live beside each other in
// verbs/*.ts; this file only puts them in order and adds the meta verbs.
import { UsageError } from "../base/errors.ts";
import { completionScript } from "./completion.ts";
import { globalHelp, verbHelp } from "./help.ts";
import { closest } from "./suggest.ts";
import type { Verb } from "./types.ts";
import { containerVerbs } from "./verbs/container.ts";
import { imageVerbs } from "./verbs/images.ts";
import { instanceReadVerbs } from "./verbs/instance-reads.ts";
import { instanceVerbs } from "./verbs/instances.ts";
import { recoverVerbs } from "./verbs/recover.ts";
import { storeVerbs } from "./verbs/store.ts";

const metaVerbs: Verb[] = [
  {
    name: "help",
    group: "other",
    args: [{ name: "VERB", optional: true }],
    summary: "Show help for boxctl or for one verb.",
    mutates: false,
    run: async ({ args }) => {
      const name = args[0];
      process.stdout.write(name ? verbHelp(findVerb(name)) : globalHelp(VERBS));
      return 0;
    },
  },
  {
    name: "completion",
    group: "other",
    args: [{ name: "SHELL" }],
    summary: "Print a shell completion script (bash).",
    details: `Completes verbs, options, machine names and image names. The Debian package
installs it; without the package, install it where bash-completion loads it on demand:
boxctl completion bash > /usr/local/share/bash-completion/completions/boxctl`,
    mutates: false,
    run: async ({ args }) => {
      process.stdout.write(completionScript(args[0] ?? "", VERBS));
      return 0;
    },
  },
];

export const VERBS: Verb[] = [
  ...containerVerbs,
  ...imageVerbs,
  ...instanceVerbs,
  ...instanceReadVerbs,
  ...recoverVerbs,
  ...storeVerbs,
  ...metaVerbs,
].sort((a, b) => (a.name < b.name ? -1 : 1));

export function findVerb(name: string): Verb {
  const verb = VERBS.find((v) => v.name === name);
  if (verb) return verb;
  const guess = closest(
    name,
    VERBS.filter((v) => !v.hidden).map((v) => v.name),
  );
  throw new UsageError(
    `Unknown command '${name}'.${guess ? ` Did you mean '${guess}'?` : ""}`,
    "see 'boxctl --help' for the list of verbs",
  );
}

// `stop` exists only to point at the verb a sysadmin meant, as the original tool did.
const stop = VERBS.find((v) => v.name === "stop");
if (stop) {
  stop.run = async () => {
    throw new UsageError(
      "'stop' is not a boxctl verb. Did you mean 'poweroff'?",
      "boxctl poweroff NAME",
    );
  };
}
