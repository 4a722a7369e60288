// What a unit's processes said: the journal lines that explain a failed
// start, since systemctl itself says only "see journalctl".
//
// journald writes what it receives asynchronously: a query right after a
// unit failed can miss the failure's own lines (seen: a container's exec
// error missing, the lines before it shown instead). `journalctl --sync`
// returns once everything sent before it is stored, so it goes first.
import { BoxError } from "../base/errors.ts";
import type { Runner } from "./runner.ts";

/** Which lines: one run of a unit (its invocation), or units' lines since a time (ms). */
export type Lines = { invocation: string; unit: string } | { units: string[]; sinceMs: number };

/** A failed start, with what the units' processes said. */
export async function withJournal(r: Runner, e: unknown, which: Lines): Promise<unknown> {
  if (!(e instanceof BoxError)) return e;
  await r.run(["journalctl", "--sync"], { check: false });
  const who = "invocation" in which ? which.unit : which.units.join(", ");
  const said = (await unitLines(r, which)).join("\n    ");
  return said ? new BoxError(`${e.message}\n  ${who} said:\n    ${said}`, e.hint, e.exitCode) : e;
}

/** The last lines of a unit's run, or of units since a time; none where the journal is closed to the caller. */
export async function unitLines(r: Runner, which: Lines): Promise<string[]> {
  const [match, n] =
    "invocation" in which
      ? // Lines the unit's processes wrote, and what systemd said of that run.
        [
          [`_SYSTEMD_INVOCATION_ID=${which.invocation}`, "+", `INVOCATION_ID=${which.invocation}`],
          10,
        ]
      : [
          [
            ...which.units.flatMap((u) => ["-u", u]),
            `--since=@${(which.sinceMs / 1000).toFixed(3)}`,
          ],
          // Enough for each unit's own failure (a view's is 6 lines), not pages of them.
          4 + 4 * which.units.length,
        ];
  const j = await r.run(
    ["journalctl", ...match, "-n", String(n), "-q", "--no-pager", "-o", "cat"],
    {
      check: false,
    },
  );
  const text = j.code === 0 ? j.stdout.trim() : "";
  return text ? text.split("\n") : [];
}

/** A message without the lines withJournal quoted: a record names the failure, the journal keeps the lines. */
export function withoutQuote(message: string): string {
  const i = message.search(/\n {2}[^\n]+ said:\n {4}/);
  return i < 0 ? message : message.slice(0, i);
}
