// Argument and option specs that several verb files share, so that one
// option reads the same in every verb's --help.
import { UsageError } from "../../base/errors.ts";
import type { Opts } from "../types.ts";

export const machine = { name: "NAME", complete: "machine" } as const;

export const lockWait = {
  wait: { type: "boolean", help: "If another boxctl command holds the machine, wait for it." },
} as const;

/** The verbs that delete what cannot come back ask first (ops/ask.ts); --yes answers for a script. */
export const yes = {
  yes: { type: "boolean", short: "y", help: "Do not ask for confirmation." },
} as const;

/** The switch verbs' and recover's: they may also wait for the way back. */
export const timeout = {
  timeout: {
    type: "string",
    arg: "S",
    help: "Seconds to wait for the container to boot, also on the way back (default 90).",
  },
} as const;

/** --instance GEN (or another option naming a generation), checked. */
export function gen(o: Opts, k = "instance"): number | undefined {
  const s = o[k];
  if (typeof s !== "string") return undefined;
  if (!/^[1-9]\d*$/.test(s))
    throw new UsageError(
      `--${k} '${s}' is not a generation number`,
      "see the GEN column of boxctl history NAME",
    );
  return Number(s);
}
