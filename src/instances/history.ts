// history NAME: a machine's instances, newest last, with the current and
// fallback ones marked. A read verb: it never recovers or changes anything.
import type { Opts } from "../cli/types.ts";
import { BoxError } from "../errors.ts";
import { type MachineState, requireMachine } from "../machines/state.ts";
import { checkName } from "../names.ts";
import { ago, color, emit, humanBytes, renderTable } from "../output.ts";
import { isRunning } from "../systemd.ts";
import { pendingWarning } from "./recover.ts";
import { changesSize } from "./store.ts";

export async function history(name: string, opts: Opts): Promise<number> {
  checkName("machine", name);
  const m = readableMachine(name);
  const warning = pendingWarning(name);
  if (warning) process.stderr.write(`boxctl: warning: ${warning}\n`);
  const running = m.current !== null && (await isRunning(name));
  const rows = await Promise.all(
    m.instances.map(async (i) => ({
      ...i,
      changesBytes: await changesSize(name, i.gen),
      current: i.gen === m.current,
      fallback: i.gen === m.fallback,
    })),
  );
  emit(
    opts,
    () => ({
      machine: name,
      current: m.current,
      fallback: m.fallback,
      running,
      instances: rows,
      lastOperation: m.lastOperation,
    }),
    (legend) =>
      renderTable(
        ["GEN", "IMAGE", "CREATED", "LAST ACTIVE", "CHANGES", "MARK"],
        rows.map((r) => [
          String(r.gen),
          r.image,
          r.created.replace(/\.\d+Z$/, "Z"),
          r.current && running ? "now" : ago(r.lastActive),
          r.changesBytes === null ? "?" : humanBytes(r.changesBytes),
          r.current ? color.green("current") : r.fallback ? color.yellow("fallback") : "",
        ]),
        {
          legend,
          footer:
            `${rows.length} instance${rows.length === 1 ? "" : "s"}` +
            (m.lastOperation
              ? `; last operation: ${m.lastOperation.verb} ${m.lastOperation.result}${m.lastOperation.message ? ` (${m.lastOperation.message})` : ""}`
              : ""),
        },
      ),
  );
  return 0;
}

/** The machine's state, with a clear error when the store is root-only. */
export function readableMachine(name: string): MachineState {
  try {
    return requireMachine(name);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EACCES") throw e;
    throw new BoxError(
      `cannot read ${name}'s state: boxctl's store is readable by root only`,
      `run it as root: sudo boxctl ${process.argv[2] ?? ""} ${name}`,
    );
  }
}
