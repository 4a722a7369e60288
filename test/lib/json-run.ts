// Runs a verb against the fake host as main.ts would with --json, and stands
// for another command holding a machine's lock: shared by the --json tests.
import { readlinkSync } from "node:fs";
import { BoxError } from "../../src/base/errors.ts";
import { paths } from "../../src/base/paths.ts";
import { failedJson } from "../../src/cli/output.ts";
import { parseVerbArgs } from "../../src/cli/parse.ts";
import { findVerb } from "../../src/cli/table.ts";
import { capture } from "./capture.ts";
import type { FakeHost } from "./fake-host.ts";

/** Runs a verb as main.ts would, and returns what it printed on stdout. */
export const captured = (fn: () => Promise<unknown>) => capture("stdout", fn);

export async function run(h: FakeHost, argv: string[]): Promise<Record<string, unknown>> {
  const verb = findVerb(argv[0] as string);
  const { args, opts } = parseVerbArgs(verb, [...argv.slice(1), "--json"]);
  const text = await captured(async () => {
    try {
      await verb.run?.({ verb, args, opts, r: h });
    } catch (e) {
      if (!(e instanceof BoxError)) throw e;
      failedJson({ verb }, e);
    }
  });
  return JSON.parse(text);
}

/**
 * Another command holds machine's lock: `flock -n` on its lock file fails at
 * once; `flock` without -n (--wait) waits, here until the holder is gone, and
 * so succeeds. The holder's "PID VERB" is what the test writes to the file.
 */
export function heldElsewhere(h: FakeHost, machine: string): void {
  const flock = h.run.bind(h);
  h.run = (argv, o) =>
    argv[0] === "flock" &&
    argv.includes("-n") &&
    readlinkSync(`/proc/self/fd/${o?.fds?.[0]}`) === paths.lock(machine)
      ? Promise.resolve({ code: 1, stdout: "", stderr: "" })
      : flock(argv, o);
}
