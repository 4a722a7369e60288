// Argument and option specs that several verb files share, so that one
// option reads the same in every verb's --help.
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
