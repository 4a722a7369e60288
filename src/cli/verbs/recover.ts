// recover NAME, and recover --boot (what boxctl-recover.service runs): the
// frame every mutating verb begins with (ops/guard.ts), as a verb of its own.
import { UsageError } from "../../base/errors.ts";
import { recoverAtBoot, recoverCommand } from "../../ops/guard.ts";
import { done } from "../output.ts";
import { parseTimeout } from "../parse.ts";
import type { Verb } from "../types.ts";
import { lockWait, machine, timeout } from "./args.ts";

export const recoverVerbs: Verb[] = [
  {
    name: "recover",
    group: "image",
    args: [{ ...machine, optional: true }],
    summary: "Complete or roll back an interrupted operation on NAME.",
    details: `Every mutating boxctl command does this first on its own; this verb does only that.
An operation interrupted before the new instance had booted is rolled back to the
instance that was current before; one interrupted later is completed. Either way the
container is started. A reset, delete-instance or delete-machine that was interrupted is completed.
With no interrupted operation, recover puts back what status reports as differing from
the record (a root mounted from another instance, a mount unit that names another one).

--boot (no NAME) settles every machine with an interrupted operation without starting or
stopping anything: it is what boxctl-recover.service runs at boot, before any of boxctl's
containers is mounted, after a crash or a power cut. Every outcome is in the journal:
journalctl -t boxctl BOXCTL_OPERATION=recover.`,
    options: {
      ...timeout,
      ...lockWait,
      boot: {
        type: "boolean",
        help: "Settle every machine, as boxctl-recover.service does at boot (no NAME).",
      },
    },
    mutates: true,
    scripted: true,
    run: async (ctx) => {
      const {
        args: [name],
        opts,
        r,
      } = ctx;
      if (opts.boot === true) {
        if (name !== undefined) throw new UsageError("recover --boot takes no NAME");
        // Its outcome per machine is in the journal; at boot nothing reads stdout.
        if (opts.json)
          throw new UsageError("recover --boot does not take --json", "use recover NAME --json");
        return recoverAtBoot(r);
      }
      if (name === undefined) throw new UsageError("recover needs NAME (or --boot)");
      const res = await recoverCommand(r, name, {
        wait: opts.wait === true,
        timeoutMs: parseTimeout(opts.timeout, "recover"),
      });
      const changed = res.interrupted !== null || res.settled !== null;
      return done(
        ctx,
        { machine: name, changed, ...res },
        ...(changed ? [] : [`${name}: no interrupted operation`]),
      );
    },
  },
];
