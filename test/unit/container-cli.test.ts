// Issue 5: output conventions generated from the verb table: the man page
// (committed, must match) and the bash completion script.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { completionScript } from "../../src/cli/completion.ts";
import { manPage } from "../../src/cli/man.ts";
import { VERBS } from "../../src/cli/table.ts";
import { UsageError } from "../../src/errors.ts";

const root = new URL("../../", import.meta.url);

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
