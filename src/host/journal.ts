// The audit trail: every state change boxctl makes is one entry in the
// system journal, with structured fields, so that
//   journalctl -t boxctl BOXCTL_MACHINE=web1
// is a machine's history across reboots (machine.json keeps only the last
// operation). Node cannot write to journald's datagram socket itself;
// util-linux's `logger --journald` (bsdutils, Essential on Debian) reads
// FIELD=value lines on its standard input and sends them as one entry.
// Logging never fails an operation: without a journal (no journald, no
// logger) boxctl works exactly as before.
import type { Runner } from "./runner.ts";

export interface JournalEvent {
  /** The human line journalctl shows. */
  message: string;
  machine?: string;
  /** The verb, e.g. cutover-instance, recover, stage-image. */
  operation: string;
  instance?: number | null;
  image?: string | null;
  /** What happened: started, booted, ok, check-failed, rolled-back, completed, ... */
  result: string;
  /** Extra BOXCTL_* fields, e.g. { STEP: "restart" }. */
  extra?: Record<string, string | number | null | undefined>;
  /** syslog priority: 6 info (default), 4 warning, 3 error. */
  priority?: 3 | 4 | 5 | 6;
}

/** One line per field: a value with a newline would start a new field, so newlines become spaces. */
function field(key: string, value: string | number): string {
  return `${key}=${String(value).replace(/[\r\n]+/g, " ")}\n`;
}

/** The export text logger --journald reads; pure, unit-tested. */
export function journalEntry(e: JournalEvent): string {
  let out =
    field("MESSAGE", e.machine ? `${e.machine}: ${e.message}` : e.message) +
    field("SYSLOG_IDENTIFIER", "boxctl") +
    field("PRIORITY", e.priority ?? 6) +
    field("BOXCTL_OPERATION", e.operation) +
    field("BOXCTL_RESULT", e.result);
  if (e.machine) out += field("BOXCTL_MACHINE", e.machine);
  if (e.instance !== undefined && e.instance !== null) out += field("BOXCTL_INSTANCE", e.instance);
  if (e.image) out += field("BOXCTL_IMAGE", e.image);
  for (const [k, v] of Object.entries(e.extra ?? {}))
    if (v !== undefined && v !== null) out += field(`BOXCTL_${k}`, v);
  return out;
}

/**
 * Sends one entry. Never throws and never prints: a missing logger, a
 * journald that is down, or a dry run (which changes nothing, so has
 * nothing to record) all leave the operation as it was.
 */
export async function journal(r: Runner, e: JournalEvent): Promise<void> {
  if (r.dryRun) return;
  try {
    await r.run(["logger", "--journald"], { input: journalEntry(e), check: false });
  } catch {
    // logger is not installed: the audit trail is best effort by design.
  }
}
