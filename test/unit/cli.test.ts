import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseVerbArgs } from "../../src/cli/parse.ts";
import { closest, distance } from "../../src/cli/suggest.ts";
import { findVerb, VERBS } from "../../src/cli/table.ts";
import { printable, UsageError } from "../../src/errors.ts";
import { checkName, isValidName } from "../../src/names.ts";

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
  it("has every verb the seed and DEVELOPERS.md name", () => {
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
  it("leaves the command of `shell` alone, flags and all", () => {
    const r = parseVerbArgs(findVerb("shell"), ["--verbose", "m1", "ls", "-la", "--json"]);
    assert.deepEqual(r.args, ["m1", "ls", "-la", "--json"]);
    assert.equal(r.opts.verbose, true);
  });
});

describe("names", () => {
  it("accepts ordinary machine and image names", () => {
    for (const n of ["system1", "foo-0.1", "web_2", "A.b-c"]) assert.ok(isValidName(n), n);
  });
  it("refuses anything that could escape a path or a unit name", () => {
    for (const n of [
      "",
      ".",
      "..",
      "a/b",
      "../x",
      "-rf",
      "a..b",
      "a b",
      "x".repeat(65),
      "a\nb",
      "a.",
      "é",
    ]) {
      assert.ok(!isValidName(n), JSON.stringify(n));
    }
    assert.throws(() => checkName("image", "../etc"), /invalid image name/);
  });
  it("prints control characters escaped", () => {
    assert.equal(printable("a\x1b[31mb"), "a\\x1b[31mb");
  });
});
