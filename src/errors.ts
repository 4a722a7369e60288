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
  ) {
    super(message);
    this.name = "BoxError";
  }
}

export class UsageError extends BoxError {
  constructor(message: string, hint?: string) {
    super(message, hint, EXIT.usage);
    this.name = "UsageError";
  }
}
