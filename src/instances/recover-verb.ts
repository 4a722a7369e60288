// boxctl recover NAME: only the recovery every mutating verb runs first.
import { requireMachine } from "../machines/state.ts";
import { checkName } from "../names.ts";
import { guarded } from "./guard.ts";
import { readIntent } from "./journal.ts";

export async function recoverCommand(name: string, opts: { wait?: boolean }): Promise<number> {
  checkName("machine", name);
  const pending = readIntent(name) !== null;
  return guarded(name, "recover", opts, async () => {
    if (!pending) {
      requireMachine(name);
      process.stdout.write(`${name}: no interrupted operation\n`);
    }
    return 0;
  });
}
