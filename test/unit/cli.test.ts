// cli/: argument parsing, the verb table and its suggestions, --timeout,
// the tables, and what is generated from the table (man page, completion).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { BoxError, UsageError } from "../../src/base/errors.ts";
import { count, humanBytes } from "../../src/base/format.ts";
import { completionScript } from "../../src/cli/completion.ts";
import { globalHelp, verbHelp } from "../../src/cli/help.ts";
import { manPage } from "../../src/cli/man.ts";
import { renderTable } from "../../src/cli/output.ts";
import { parseTimeout, parseVerbArgs } from "../../src/cli/parse.ts";
import { closest, distance } from "../../src/cli/suggest.ts";
import { findVerb, VERBS } from "../../src/cli/table.ts";
import { capture } from "../lib/capture.ts";

const root = new URL("../../", import.meta.url);

describe("suggestions", () => {
  it("measures edit distance", () => {
    assert.equal(distance("start", "stat"), 1);
    assert.equal(distance("", "abc"), 3);
    assert.equal(distance("abc", "abc"), 0);
  });
  it("suggests the verb a typo meant, and nothing for noise", () => {
    const names = VERBS.map((v) => v.name);
    assert.equal(closest("strat", names), "start");
    assert.equal(closest("cutover", names), "cutover-instance");
    assert.equal(closest("xyzzyplugh", names), undefined);
  });
  it("names the suggestion in the unknown-verb error, a usage error", () => {
    assert.throws(
      () => findVerb("lsit"),
      (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.equal(e.exitCode, 2);
        assert.equal(e.message, "Unknown command 'lsit'. Did you mean 'list'?");
        return true;
      },
    );
  });
});

describe("verb table", () => {
  it("has every verb the seed names, and recover and the read verbs", () => {
    const want = `stage-image cutover-instance fallback-instance reset delete-instance list-images
      start poweroff restart terminate enable disable login configure status list`.split(/\s+/);
    for (const name of want)
      assert.ok(
        VERBS.some((v) => v.name === name),
        name,
      );
  });
  it("gives every read verb --json and every mutating verb --dry-run", () => {
    for (const v of VERBS) {
      if (v.reads)
        assert.doesNotThrow(() =>
          parseVerbArgs(v, [...v.args.filter((a) => !a.optional).map(() => "x"), "--json"]),
        );
      if (v.mutates)
        assert.doesNotThrow(() =>
          parseVerbArgs(v, [...v.args.filter((a) => !a.optional).map(() => "x"), "--dry-run"]),
        );
    }
  });
});

describe("argument parsing", () => {
  const verb = findVerb("cutover-instance");
  it("takes positionals and options", () => {
    const r = parseVerbArgs(verb, ["system1", "foo-0.2", "--timeout", "30"]);
    assert.deepEqual(r.args, ["system1", "foo-0.2"]);
    assert.equal(r.opts.timeout, "30");
  });
  it("rejects a missing or extra argument and unknown options as usage errors", () => {
    assert.throws(() => parseVerbArgs(verb, ["system1"]), /missing IMAGE/);
    assert.throws(() => parseVerbArgs(verb, ["a", "b", "c"]), /unexpected argument 'c'/);
    assert.throws(() => parseVerbArgs(verb, ["a", "b", "--bogus"]), UsageError);
  });
  it("says unknown options in boxctl's words, with the option likely meant", () => {
    const err = (argv: string[]) => {
      try {
        parseVerbArgs(verb, argv);
      } catch (e) {
        return e as UsageError;
      }
      assert.fail(`${argv.join(" ")} parsed`);
    };
    const typo = err(["a", "b", "--timout", "3"]);
    assert.equal(typo.message, "cutover-instance: unknown option '--timout'");
    assert.match(typo.hint ?? "", /^did you mean --timeout\? usage: boxctl cutover-instance /);
    assert.doesNotMatch(err(["a", "b", "--zzzzzzzz"]).hint ?? "", /did you mean/);
    assert.equal(
      err(["a", "b", "--timeout"]).message,
      "cutover-instance: option '--timeout <value>' argument missing",
    );
  });
  it("leaves the command of `shell` alone, flags and all", () => {
    const r = parseVerbArgs(findVerb("shell"), ["--verbose", "m1", "ls", "-la", "--json"]);
    assert.deepEqual(r.args, ["m1", "ls", "-la", "--json"]);
    assert.equal(r.opts.verbose, true);
  });
});

describe("--timeout", () => {
  it("defaults to 90 s and takes seconds", () => {
    assert.equal(parseTimeout(undefined, "cutover-instance"), 90_000);
    assert.equal(parseTimeout("20", "cutover-instance"), 20_000);
    assert.equal(parseTimeout("1.5", "cutover-instance"), 1500);
    assert.equal(parseTimeout("86400", "cutover-instance"), 86_400_000, "a day at most");
  });
  it("is a usage error for anything else", () => {
    for (const bad of ["0", "-3", "abc", "", "1e9", "86401"]) {
      assert.throws(
        () => parseTimeout(bad, "cutover-instance"),
        (e: unknown) => e instanceof BoxError && e.exitCode === 2,
      );
    }
  });
});

describe("output", () => {
  it("aligns tables and drops the legend on request", () => {
    const rows = [
      ["system1", "running"],
      ["a", "stopped"],
    ];
    assert.equal(
      renderTable(["NAME", "STATE"], rows),
      "NAME     STATE\nsystem1  running\na        stopped\n",
    );
    assert.equal(
      renderTable(["NAME", "STATE"], rows, { legend: false }),
      "system1  running\na        stopped\n",
    );
  });
  it("prints sizes the way du -h does", () => {
    assert.equal(humanBytes(512), "512B");
    assert.equal(humanBytes(1536), "1.5K");
    assert.equal(humanBytes(171 * 1024 * 1024), "171M");
  });
  it("counts in words that agree with the number (df said '1 instances')", () => {
    assert.deepEqual(
      [0, 1, 2].map((n) => count(n, "instance")),
      ["0 instances", "1 instance", "2 instances"],
    );
  });
});

describe("man page", () => {
  it("docs/boxctl.8 is the one generated from the verb table (npm run man)", () => {
    const { version } = JSON.parse(readFileSync(new URL("package.json", root), "utf8"));
    const committed = readFileSync(new URL("docs/boxctl.8", root), "utf8");
    assert.equal(committed, manPage(VERBS, version), "docs/boxctl.8 is stale: run npm run man");
  });
  it("documents every visible verb, its options and the exit codes", () => {
    const page = manPage(VERBS, "1.0.0");
    for (const v of VERBS.filter((x) => !x.hidden))
      assert.match(page, new RegExp(`^\\.B ${v.name.replace(/-/g, "\\\\-")}\\b`, "m"), v.name);
    assert.match(page, /^\.B \\-\\-dry\\-run$/m);
    assert.match(page, /^\.SH EXIT STATUS$/m);
    assert.doesNotMatch(page, /^\.B stop\b/m);
  });
});

describe("bash completion", () => {
  const script = completionScript("bash", VERBS);
  it("is valid bash and offers the visible verbs", () => {
    const r = spawnSync("bash", ["-n"], { input: script });
    assert.equal(r.status, 0, r.stderr.toString());
    const verbs = /local verbs="([^"]*)"/.exec(script)?.[1]?.split(" ") ?? [];
    assert.ok(verbs.includes("start") && verbs.includes("cutover-instance"));
    assert.ok(!verbs.includes("stop"));
  });
  it("completes verbs, options and machine names", () => {
    const complete = (words: string[]) => {
      const r = spawnSync(
        "bash",
        [
          "-c",
          `${script}\nCOMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _boxctl; printf '%s\\n' "\${COMPREPLY[@]}"`,
          "x",
          ...words,
        ],
        { encoding: "utf8" },
      );
      return r.stdout.trim().split("\n");
    };
    assert.deepEqual(complete(["boxctl", "restar"]), ["restart"]);
    assert.ok(complete(["boxctl", "start", "x", "--no-"]).includes("--no-block"));
    assert.deepEqual(complete(["boxctl", "completion", "b"]), ["bash"]);
  });
  it("refuses other shells with a usage error", () => {
    assert.throws(() => completionScript("fish", VERBS), UsageError);
  });
});

describe("help VERB", () => {
  it("prints what VERB --help prints, for every verb", async () => {
    const help = findVerb("help");
    for (const v of VERBS) {
      const text = await capture("stdout", () =>
        help.run?.({ verb: help, args: [v.name], opts: {}, r: undefined as never }),
      );
      assert.equal(text, verbHelp(v), v.name);
      assert.match(text, new RegExp(`^Usage: boxctl ${v.name} `));
    }
  });
});

describe("exit status in --help", () => {
  it("names 130 for the verbs that can be interrupted, and only for them", () => {
    const line = (name: string) => /^Exit status: .*$/m.exec(verbHelp(findVerb(name)))?.[0] ?? "";
    for (const v of ["cutover-instance", "fallback-instance", "reset", "stage-image"])
      assert.match(line(v), /0 success, 1 operation failed, 2 usage error, 130 interrupted/);
    assert.doesNotMatch(line("list"), /130/);
    assert.match(globalHelp(VERBS), /^ {2}130 {2}interrupted/m);
  });
});
