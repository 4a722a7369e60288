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

/** One journal entry, as journalctl -o json gives it. */
interface Entry {
  /** __REALTIME_TIMESTAMP, in microseconds. */
  us: number;
  message: string;
  /** journald could tell the sender's unit (_SYSTEMD_UNIT). */
  attributed: boolean;
}

/** journalctl -o json's lines; a MESSAGE that is not UTF-8 comes as an array of bytes. */
export function parseEntries(stdout: string): Entry[] {
  const out: Entry[] = [];
  for (const line of stdout.split("\n")) {
    if (!line.trim()) continue;
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line);
    } catch {
      continue;
    }
    const m = e.MESSAGE;
    const message = Array.isArray(m)
      ? Buffer.from(m as number[]).toString("utf8")
      : String(m ?? "");
    out.push({ us: Number(e.__REALTIME_TIMESTAMP), message, attributed: "_SYSTEMD_UNIT" in e });
  }
  return out;
}

async function entries(r: Runner, args: string[]): Promise<Entry[]> {
  const j = await r.run(["journalctl", ...args, "-q", "--no-pager", "-o", "json"], {
    check: false,
  });
  return j.code === 0 ? parseEntries(j.stdout) : [];
}

/** The last lines of a unit's run, or of units since a time; none where the journal is closed to the caller. */
export async function unitLines(r: Runner, which: Lines): Promise<string[]> {
  const [match, n, units] =
    "invocation" in which
      ? // Lines the unit's processes wrote, and what systemd said of that run.
        [
          [`_SYSTEMD_INVOCATION_ID=${which.invocation}`, "+", `INVOCATION_ID=${which.invocation}`],
          10,
          [which.unit],
        ]
      : [
          [
            ...which.units.flatMap((u) => ["-u", u]),
            `--since=@${(which.sinceMs / 1000).toFixed(3)}`,
          ],
          // Enough for each unit's own failure (a view's is 6 lines), not pages of them.
          4 + 4 * which.units.length,
          which.units,
        ];
  const own = await entries(r, [...match, "-n", String(n)]);
  const first = own[0];
  const last = own[own.length - 1];
  if (!first || !last || !units.some((u) => u.startsWith("systemd-nspawn@")))
    return own.map((e) => e.message);
  // systemd-nspawn (252 on) logs to the journal's socket, not through its
  // unit's stdout stream, and journald learns a sender's unit from /proc:
  // a line from a process that exited at once (nspawn's child failing a
  // bind mount, say) is stored without one, and no unit match finds it
  // (measured on 257: 2 quotes of 10 lacked their one explaining line).
  // Such lines of nspawn's during the run are taken as the run's: another
  // container failing its start in the same fraction of a second is rare.
  const at = (us: number) => `@${(us / 1e6).toFixed(6)}`;
  const orphans = (
    await entries(r, [
      "SYSLOG_IDENTIFIER=systemd-nspawn",
      `--since=${at(first.us)}`,
      `--until=${at(last.us)}`,
    ])
  ).filter((e) => !e.attributed);
  return [...own, ...orphans]
    .sort((a, b) => a.us - b.us)
    .slice(-(n + orphans.length))
    .map((e) => e.message);
}

/** A message without the lines withJournal quoted: a record names the failure, the journal keeps the lines. */
export function withoutQuote(message: string): string {
  const i = message.search(/\n {2}[^\n]+ said:\n {4}/);
  return i < 0 ? message : message.slice(0, i);
}
