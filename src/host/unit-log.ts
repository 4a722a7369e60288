// What a unit's processes said: the journal lines that explain a failed
// start, since systemctl itself says only "see journalctl".
import { BoxError } from "../base/errors.ts";
import type { Runner } from "./runner.ts";

/**
 * A failed start, with what the units' processes said since it began
 * (sinceMs, the clock journald stamps with): systemctl says "see journalctl".
 */
export async function withJournal(
  r: Runner,
  units: string[],
  e: unknown,
  sinceMs: number | null,
): Promise<unknown> {
  if (!(e instanceof BoxError)) return e;
  const argv = [
    "journalctl",
    ...units.flatMap((u) => ["-u", u]),
    ...(sinceMs === null ? [] : [`--since=@${(sinceMs / 1000).toFixed(3)}`]),
    "-n",
    // Enough for each unit's own failure (a view's is 6 lines), not pages of them.
    String(4 + 4 * units.length),
    "--no-pager",
    "-o",
    "cat",
  ];
  const j = await r.run(argv, { check: false });
  const said = j.stdout.trim().split("\n").join("\n    ");
  const who = units.join(", ");
  return said ? new BoxError(`${e.message}\n  ${who} said:\n    ${said}`, e.hint, e.exitCode) : e;
}

/** When the unit last started (left the inactive state), in ms; null if systemd does not say. */
export async function lastStartMs(r: Runner, unit: string): Promise<number | null> {
  const res = await r.run(
    ["systemctl", "show", "--property=InactiveExitTimestamp", "--timestamp=unix", "--value", unit],
    { check: false },
  );
  const m = /^@(\d+(?:\.\d+)?)\s*$/.exec(res.stdout);
  return m ? Number(m[1]) * 1000 : null;
}
