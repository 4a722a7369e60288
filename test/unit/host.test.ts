// host/: the runner, the systemd adapter's parsing, the mount table and
// the state files.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import * as v from "valibot";
import { BoxError } from "../../src/base/errors.ts";
import { paths, relocate } from "../../src/base/paths.ts";
import {
  keepReserve,
  NoSpaceError,
  noSpace,
  readJson,
  releaseReserve,
  rootOnly,
  writeBehind,
  writeJsonAtomic,
} from "../../src/host/files.ts";
import { configureArgv } from "../../src/host/in-machine.ts";
import { mountAt, overlayOption } from "../../src/host/mounts.ts";
import { commandEnv, failure, SystemRunner, showCommand } from "../../src/host/runner.ts";
import { escapePath, mountUnitName } from "../../src/host/systemd.ts";
import { parseShow } from "../../src/host/unit-state.ts";
import { machineState, parseMachinectlList } from "../../src/host/units.ts";
import { emptyMachine, MachineSchema } from "../../src/store/machine.ts";
import { capture } from "../lib/capture.ts";
import { FakeHost } from "../lib/fake-host.ts";
import { SHOW } from "../lib/systemd.ts";
import { tempDir } from "../lib/tmp.ts";

describe("systemd answers", () => {
  it("parses several units from one systemctl show", () => {
    const m = parseShow(SHOW);
    assert.equal(m.size, 2);
    const a = m.get("systemd-nspawn@a.service");
    assert.equal(a?.activeState, "active");
    assert.equal(a?.unitFileState, "enabled");
    assert.equal(a?.since, new Date(1795697980 * 1000).toISOString());
    assert.equal(m.get("systemd-nspawn@b.service")?.since, null);
  });
  it("names the states a person expects", () => {
    assert.equal(machineState("active"), "running");
    assert.equal(machineState("inactive"), "stopped");
    assert.equal(machineState("failed"), "failed");
    assert.equal(machineState("activating"), "starting");
  });
  it("reads machinectl list -o json, and survives garbage", () => {
    const r = parseMachinectlList(
      '[{"machine":"x","class":"container","service":"systemd-nspawn","os":"debian","version":"12","addresses":null}]',
    );
    assert.deepEqual(r, [
      { name: "x", class: "container", service: "systemd-nspawn", os: "debian", osVersion: "12" },
    ]);
    assert.deepEqual(parseMachinectlList("No machines."), []);
  });
  it("finds the topmost mount at a path, with its overlay options", () => {
    const info = [
      "30 1 0:25 / /var/lib/machines/a rw,relatime - ext4 /dev/sda1 rw",
      "31 30 0:26 / /var/lib/machines/a rw,relatime - overlay overlay rw,lowerdir=/s/img,upperdir=/s/m/a/instances/2/upper,workdir=/s/w",
      "32 1 0:27 / /var/lib/machines/a\\040b rw - tmpfs tmpfs rw",
    ].join("\n");
    const m = mountAt("/var/lib/machines/a", info);
    assert.equal(m?.fstype, "overlay");
    assert.equal(overlayOption(m?.superOptions ?? "", "upperdir"), "/s/m/a/instances/2/upper");
    assert.equal(mountAt("/var/lib/machines/a b", info)?.fstype, "tmpfs");
    assert.equal(mountAt("/var/lib/machines/c", info), null);
  });
});

describe("a full file system", () => {
  const enospc = () =>
    Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
  it("is one error that names the file system, the file, and what frees space in the store", () => {
    const e = noSpace(enospc(), "/var/lib/boxctl/machines/web/intent.json");
    assert.ok(e instanceof NoSpaceError);
    assert.equal(
      e.message,
      "no space left on the file system of /var/lib/boxctl/machines/web: could not write /var/lib/boxctl/machines/web/intent.json",
    );
    assert.match(e.hint ?? "", /boxctl df .*boxctl prune/);
    assert.match(
      (noSpace(enospc(), "/etc/systemd/system/x.mount") as BoxError).hint ?? "",
      /free space on the file system of \/etc\/systemd\/system/,
    );
  });
  it("keeps a reserve in the store that deletions free first, and makes it again only with room to spare", () => {
    relocate(tempDir("boxctl-reserve-"));
    mkdirSync(paths.store(), { recursive: true });
    keepReserve(new FakeHost({ dryRun: true }));
    assert.equal(existsSync(paths.reserve()), false, "a dry run writes nothing");
    keepReserve(new FakeHost());
    assert.equal(statSync(paths.reserve()).size, 256 * 1024);
    releaseReserve(new FakeHost());
    assert.equal(existsSync(paths.reserve()), false);
    assert.deepEqual(readdirSync(paths.store()), [], "no temp file either");
  });

  it("leaves every other error as it is", () => {
    const e = Object.assign(new Error("EACCES"), { code: "EACCES" });
    assert.equal(noSpace(e, "/x"), e);
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

describe("state files", () => {
  const dir = tempDir("boxctl-state-");
  const file = join(dir, "machine.json");

  it("round-trips a machine through an atomic write, leaving no temp file", () => {
    const m = emptyMachine("system1");
    writeJsonAtomic(new SystemRunner(), file, m);
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

describe("the system runner", () => {
  it("runs every command in the C locale, whatever the caller's LANG and LANGUAGE", async () => {
    const saved = { LANG: process.env.LANG, LANGUAGE: process.env.LANGUAGE };
    process.env.LANG = "de_DE.UTF-8";
    process.env.LANGUAGE = "de";
    try {
      const r = await new SystemRunner().run(["env"]);
      assert.match(r.stdout, /^LC_ALL=C$/m);
      assert.doesNotMatch(r.stdout, /^LANGUAGE=/m);
    } finally {
      Object.assign(process.env, saved);
    }
    assert.equal(commandEnv({ LANGUAGE: "de", LC_ALL: "de_DE.UTF-8" }).LC_ALL, "C");
  });
  it("names a program that is not installed and the package to install", async () => {
    await assert.rejects(
      new SystemRunner().run(["machinectl-that-is-not-there"]),
      /required program 'machinectl-that-is-not-there' is not installed/,
    );
  });
  it("under --dry-run prints a command that changes something instead of running it", async () => {
    const r = new SystemRunner({ dryRun: true });
    const out = await capture("stdout", async () => {
      const res = await r.run(["rm", "-rf", "/nonexistent/x y"], { mutates: true });
      assert.equal(res.code, 0);
      assert.equal(
        r.effect("write /x", () => "ran"),
        undefined,
      );
      assert.equal(
        r.whenReal(() => "ran"),
        undefined,
      );
    });
    assert.equal(out, "rm -rf '/nonexistent/x y'\n# write /x\n");
  });
});

describe("configure", () => {
  it("runs nspawn on the mounted root without private users or boot", () => {
    const argv = configureArgv("/var/lib/machines/a", "a", ["sh", "-c", "true"], false);
    assert.deepEqual(argv, [
      "systemd-nspawn",
      "--quiet",
      "--directory=/var/lib/machines/a",
      "--machine=a",
      "--settings=no",
      "--private-users=no",
      "--console=pipe",
      "--",
      "sh",
      "-c",
      "true",
    ]);
    assert.ok(!configureArgv("/var/lib/machines/a", "a", [], true).includes("--boot"));
  });
});

describe("the store as another user sees it", () => {
  it("says the store is root's, and how to run the verb, instead of a stack trace", () => {
    const e = Object.assign(new Error("EACCES: permission denied, scandir"), { code: "EACCES" });
    const b = rootOnly(e, "/var/lib/boxctl/machines");
    assert.ok(b instanceof BoxError);
    assert.match(
      b.message,
      /^cannot read \/var\/lib\/boxctl\/machines: boxctl's store is readable by root only$/,
    );
    assert.match(b.hint ?? "", /^run it as root: sudo boxctl/);
    const other = new Error("EIO");
    assert.equal(rootOnly(other, "/x"), other);
  });
});

describe("writeBehind (staging's writeback while tar unpacks)", () => {
  const recorder = (onRun: (n: number) => void) => {
    const runs: string[] = [];
    const r = {
      run: async (argv: readonly string[]) => {
        runs.push(argv.join(" "));
        onRun(runs.length);
        return { code: 0, stdout: "", stderr: "" };
      },
    } as unknown as SystemRunner;
    return { r, runs };
  };

  it("syncs the file system again and again until stopped, and stops at once", async () => {
    const dir = tempDir("boxctl-wb-");
    let second = () => {};
    const twice = new Promise<void>((resolve) => {
      second = resolve;
    });
    const { r, runs } = recorder((n) => n === 2 && second());
    const stop = writeBehind(r, dir);
    await twice;
    // Now in the pause before the third.
    await new Promise(setImmediate);
    const t0 = performance.now();
    await stop();
    // Stopping cuts the 250 ms pause short instead of waiting it out.
    assert.ok(performance.now() - t0 < 200, "stop() waited for the pause");
    const after = runs.length;
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(runs.length, after, "a sync after stop()");
    assert.deepEqual(new Set(runs), new Set([`sync -f ${dir}`]));
  });

  it("does nothing on tmpfs, where nothing is written back", async () => {
    const { r, runs } = recorder(() => {});
    const stop = writeBehind(r, "/dev/shm");
    // Longer than the pause before the first sync.
    await new Promise((res) => setTimeout(res, 300));
    await stop();
    assert.deepEqual(runs, []);
  });
});
