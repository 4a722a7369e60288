// Exit codes are part of boxctl's interface; README and --help list them.
export const EXIT = {
  ok: 0,
  failed: 1, // the operation was tried and failed, or the target is wrong
  usage: 2, // the command line itself is wrong
  interrupted: 130,
} as const;

/** An error a user can act on: what went wrong, and what to do about it. */
export class BoxError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    readonly exitCode: number = EXIT.failed,
    /** Where things stand after the failure, for --json (docs/json.md). */
    readonly data?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "BoxError";
  }
}

/** Writes a BoxError the way boxctl reports every error: the message, then the hint. */
export function printError(e: BoxError): void {
  process.stderr.write(`boxctl: ${printable(e.message).replace(/\\x0a/g, "\n")}\n`);
  if (e.hint) process.stderr.write(`  hint: ${e.hint}\n`);
}

export class UsageError extends BoxError {
  constructor(message: string, hint?: string) {
    super(message, hint, EXIT.usage);
    this.name = "UsageError";
  }
}

/** Renders untrusted text so that control characters cannot reach the terminal. */
export function printable(s: string): string {
  let out = "";
  for (const c of s) {
    const n = c.charCodeAt(0);
    out += n < 0x20 || n === 0x7f ? `\\x${n.toString(16).padStart(2, "0")}` : c;
  }
  return out;
}
