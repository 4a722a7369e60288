import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import * as v from "valibot";
import { BoxError } from "../../src/errors.ts";
import { emptyMachine, MachineSchema } from "../../src/machines/state.ts";
import { humanBytes, renderTable } from "../../src/output.ts";
import { failure, showCommand } from "../../src/runner.ts";
import { readJson, writeJsonAtomic } from "../../src/state.ts";
import { escapePath, mountUnitName } from "../../src/systemd.ts";

describe("state files", () => {
  const dir = mkdtempSync(join(tmpdir(), "boxctl-state-"));
  const file = join(dir, "machine.json");

  it("round-trips a machine through an atomic write, leaving no temp file", () => {
    const m = emptyMachine("system1");
    writeJsonAtomic(file, m);
    assert.deepEqual(readJson(file, MachineSchema), m);
    assert.deepEqual(readdirSync(dir), ["machine.json"]);
  });

  it("reads a missing file as null", () => {
    assert.equal(readJson(join(dir, "nope.json"), MachineSchema), null);
  });

  it("names the file and the field when a state file is corrupt or hand-edited", () => {
    writeFileSync(file, "{ not json");
    assert.throws(
      () => readJson(file, MachineSchema),
      (e: unknown) => {
        assert.ok(e instanceof BoxError);
        assert.match(e.message, new RegExp(`state file ${file} is corrupt: it is not valid JSON`));
        return true;
      },
    );
    writeFileSync(file, JSON.stringify({ ...emptyMachine("x"), current: "two" }));
    assert.throws(() => readJson(file, MachineSchema), /corrupt: field 'current'/);
    writeFileSync(file, JSON.stringify({ ...emptyMachine("x"), version: 99 }));
    assert.throws(() => readJson(file, MachineSchema), /corrupt: field 'version'/);
  });

  it("keeps the schema's own types", () => {
    assert.equal(v.safeParse(MachineSchema, emptyMachine("a")).success, true);
    assert.ok(readFileSync(file, "utf8").length > 0);
  });
});

describe("unit names", () => {
  it("escapes paths exactly as systemd-escape --path does", () => {
    for (const p of [
      "/var/lib/machines/system1",
      "/var/lib/machines/foo-0.1",
      "/var/lib/machines/a_b.c",
      "/",
    ]) {
      const want = execFileSync("systemd-escape", ["--path", p], { encoding: "utf8" }).trim();
      assert.equal(escapePath(p), want, p);
    }
    assert.equal(mountUnitName("/var/lib/machines/web-1"), "var-lib-machines-web\\x2d1.mount");
  });
});

describe("runner", () => {
  it("shows commands so that they can be pasted", () => {
    assert.equal(showCommand(["tar", "-C", "/x y", "it's"]), "tar -C '/x y' 'it'\\''s'");
  });
  it("explains a failed command with its exit status and stderr", () => {
    const e = failure(["machinectl", "start", "x"], 1, "Failed to start: No such unit\n");
    assert.match(
      e.message,
      /'machinectl start x' failed \(exit 1\):\n {2}Failed to start: No such unit/,
    );
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
});
