import { BoxError, EXIT, printError, UsageError } from "./base/errors.ts";
import { globalHelp, VERSION, verbHelp } from "./cli/help.ts";
import { failedJson } from "./cli/output.ts";
import { parseVerbArgs } from "./cli/parse.ts";
import { findVerb, VERBS } from "./cli/table.ts";
import { SystemRunner } from "./host/runner.ts";
import { sweepStaging } from "./store/images.ts";

function fail(e: unknown): number {
  if (e instanceof BoxError) {
    printError(e);
    return e.exitCode;
  }
  process.stderr.write(`boxctl: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
  return EXIT.failed;
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    process.stderr.write(globalHelp(VERBS));
    return EXIT.usage;
  }
  if (first === "--help" || first === "-h") {
    process.stdout.write(globalHelp(VERBS));
    return EXIT.ok;
  }
  if (first === "--version" || first === "-V") {
    process.stdout.write(`boxctl ${VERSION}\n`);
    return EXIT.ok;
  }
  const verb = findVerb(first);
  const { args, opts } = parseVerbArgs(verb, rest);
  if (opts.help) {
    process.stdout.write(verbHelp(verb));
    return EXIT.ok;
  }
  if (verb.scripted && opts.json && opts["dry-run"]) {
    throw new UsageError(
      `${verb.name}: --json and --dry-run do not go together: a dry run prints commands`,
      `drop one of them; see 'boxctl ${verb.name} --help'`,
    );
  }
  const r = new SystemRunner({
    dryRun: opts["dry-run"] === true,
    verbose: process.env.BOXCTL_DEBUG === "1" || opts.verbose === true,
    record: process.env.BOXCTL_RECORD,
  });
  if (!verb.run) {
    throw new BoxError(
      `'${verb.name}' is not implemented yet`,
      "see the open issues of the boxctl project",
    );
  }
  if (verb.mutates && !r.dryRun && process.getuid?.() !== 0) {
    throw new BoxError(
      `'boxctl ${verb.name}' changes the system and needs root`,
      `run it as root (sudo boxctl ${verb.name} ...), or add --dry-run to see what it would do`,
    );
  }
  // A stage-image or delete-image that was killed left a tree in staging/;
  // every run removes such debris (silently, and only as root).
  if (!r.dryRun) sweepStaging();
  try {
    return (await verb.run({ verb, args, opts, r })) ?? EXIT.ok;
  } catch (e) {
    // A script asked for JSON: it gets a document for a failure too.
    if (verb.scripted && opts.json && e instanceof BoxError) failedJson({ verb }, e);
    throw e;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.exitCode = fail(e);
  },
);
