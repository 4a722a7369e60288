import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseTimeout } from "../../src/cli/parse.ts";
import { BoxError } from "../../src/errors.ts";
import { diffTrees, parseOpaque, unescapeGetfattr } from "../../src/instances/diff.ts";
import type { Intent } from "../../src/instances/journal.ts";
import { mountUnitText, nspawnSettingsText, overlayOptions } from "../../src/instances/overlay.ts";
import { CUTOVER_STEPS, FALLBACK_STEPS } from "../../src/instances/plan.ts";
import { switchCommitted } from "../../src/instances/recover.ts";
import type { MachineState } from "../../src/machines/state.ts";
import { overlayOption } from "../../src/mounts.ts";

const spec = {
  machine: "system1",
  gen: 3,
  image: "foo-0.2",
  where: "/var/lib/machines/system1",
  lower: "/var/lib/boxctl/images/foo-0.2/rootfs",
  upper: "/var/lib/boxctl/machines/system1/instances/3/upper",
  work: "/var/lib/boxctl/machines/system1/instances/3/work",
};

describe("mount unit", () => {
  it("mounts the instance's overlay at the machine root", () => {
    const t = mountUnitText(spec);
    assert.match(
      t,
      /^\[Mount\]\nWhat=overlay\nWhere=\/var\/lib\/machines\/system1\nType=overlay$/m,
    );
    assert.match(
      t,
      /^Options=lowerdir=\/var\/lib\/boxctl\/images\/foo-0\.2\/rootfs,upperdir=\S+\/3\/upper,workdir=\S+\/3\/work$/m,
    );
    assert.doesNotMatch(t, /\[Install\]/, "pulled in by RequiresMountsFor, never enabled");
  });
  it("refuses paths overlayfs would split", () => {
    assert.throws(() => overlayOptions({ ...spec, lower: "/a,b" }), BoxError);
    assert.throws(() => overlayOptions({ ...spec, upper: "/a:b" }), BoxError);
    assert.throws(() => overlayOptions({ ...spec, work: "relative" }), BoxError);
  });
  it("reads upperdir back from findmnt's options", () => {
    assert.equal(
      overlayOption(`rw,relatime,${overlayOptions(spec)},uuid=on`, "upperdir"),
      spec.upper,
    );
    assert.equal(overlayOption("rw,relatime", "upperdir"), null);
  });
});

describe("nspawn settings", () => {
  it("creates [Exec] PrivateUsers=no in a new file", () => {
    assert.match(nspawnSettingsText(null), /^\[Exec\]\n#.*\nPrivateUsers=no\n$/);
  });
  it("keeps every other line the user wrote", () => {
    const mine = "# my notes\n[Network]\nVirtualEthernet=no\n\n[Files]\nBind=/srv\n";
    const out = nspawnSettingsText(mine);
    assert.ok(out.startsWith(mine), out);
    assert.match(out, /\n\[Exec\]\n#.*\nPrivateUsers=no\n$/);
  });
  it("adds to an existing [Exec] and overrides the user's PrivateUsers", () => {
    const out = nspawnSettingsText("[Exec]\nBoot=yes\n[Files]\nBind=/srv\n");
    assert.equal(out.match(/PrivateUsers/g)?.length, 1);
    assert.match(out, /^\[Exec\]\n#.*\nPrivateUsers=no\nBoot=yes\n\[Files\]\nBind=\/srv\n$/);
    const over = nspawnSettingsText("[Exec]\nPrivateUsers=pick\nBoot=yes\n");
    assert.equal(over, "[Exec]\nPrivateUsers=no\nBoot=yes\n");
  });
  it("leaves a PrivateUsers= of another section alone", () => {
    const out = nspawnSettingsText("[Files]\nPrivateUsersOwnership=auto\n");
    assert.match(out, /^\[Files\]\nPrivateUsersOwnership=auto\n\n\[Exec\]/);
  });
  it("is idempotent", () => {
    for (const t of [null, "# x\n", "[Exec]\nBoot=yes\n", "[Network]\nZone=a\n"]) {
      const once = nspawnSettingsText(t);
      assert.equal(nspawnSettingsText(once), once);
    }
  });
});

describe("recovery decision", () => {
  const intent = (verb: Intent["verb"], step: string): Intent => ({
    version: 1,
    verb,
    pid: 1,
    started: new Date().toISOString(),
    oldCurrent: 1,
    oldFallback: null,
    target: 2,
    wasRunning: true,
    step,
  });
  const m = { current: 1 } as MachineState;
  it("rolls back before the new instance has booted, completes after", () => {
    for (const [verb, steps] of [
      ["cutover-instance", CUTOVER_STEPS],
      ["fallback-instance", FALLBACK_STEPS],
    ] as const) {
      for (const step of ["none", ...steps]) {
        const done = step === "wait-booted" || step === "commit";
        assert.equal(switchCommitted(intent(verb, step), m), done, `${verb} ${step}`);
      }
    }
  });
  it("treats a committed state file as completed whatever the step says", () => {
    assert.equal(
      switchCommitted(intent("cutover-instance", "start"), { current: 2 } as MachineState),
      true,
    );
  });
  it("has crash steps named once each", () => {
    assert.equal(new Set(CUTOVER_STEPS).size, CUTOVER_STEPS.length);
    assert.ok(FALLBACK_STEPS.every((s) => (CUTOVER_STEPS as readonly string[]).includes(s)));
  });
});

describe("--timeout", () => {
  it("defaults to 90 s and takes seconds", () => {
    assert.equal(parseTimeout(undefined, "cutover-instance"), 90_000);
    assert.equal(parseTimeout("20", "cutover-instance"), 20_000);
    assert.equal(parseTimeout("1.5", "cutover-instance"), 1500);
  });
  it("is a usage error for anything else", () => {
    for (const bad of ["0", "-3", "abc", ""]) {
      assert.throws(
        () => parseTimeout(bad, "cutover-instance"),
        (e: unknown) => e instanceof BoxError && e.exitCode === 2,
      );
    }
  });
});

describe("diff", () => {
  it("undoes getfattr's escapes", () => {
    assert.equal(unescapeGetfattr("/a\\012b"), "/a\nb");
    assert.equal(unescapeGetfattr("/caf\\303\\251"), "/café");
    assert.equal(unescapeGetfattr("/x\\\\y"), "/x\\y");
  });
  it("finds opaque dirs in getfattr -d output", () => {
    const out = `# file: /u/usr/share/doc/apt\ntrusted.overlay.opaque="y"\n\n# file: /u/etc\ntrusted.overlay.opaque="x"\n\n`;
    assert.deepEqual([...parseOpaque(out, "/u")], ["/usr/share/doc/apt"]);
  });
  it("classifies added, modified and opaque-deleted paths", () => {
    const t = mkdtempSync(join(tmpdir(), "bx-diff-"));
    try {
      const lower = join(t, "lower");
      const upper = join(t, "upper");
      for (const d of ["etc", "opt/old/sub", "srv"]) mkdirSync(join(lower, d), { recursive: true });
      writeFileSync(join(lower, "etc/hostname"), "a\n");
      writeFileSync(join(lower, "opt/old/sub/f"), "x");
      writeFileSync(join(lower, "opt/old/g"), "x");
      for (const d of ["etc", "opt/old", "new/dir"]) mkdirSync(join(upper, d), { recursive: true });
      writeFileSync(join(upper, "etc/hostname"), "b\n");
      writeFileSync(join(upper, "opt/old/g"), "y");
      writeFileSync(join(upper, "new/dir/file"), "z");
      symlinkSync("dir", join(upper, "new/link"));
      const d = diffTrees(upper, lower, new Set(["/opt/old"]));
      assert.deepEqual(d.added, ["/new", "/new/dir", "/new/dir/file", "/new/link"]);
      assert.deepEqual(d.modified, ["/etc/hostname", "/opt/old/g"]);
      assert.deepEqual(d.deleted, ["/opt/old/sub", "/opt/old/sub/f"]);
    } finally {
      rmSync(t, { recursive: true, force: true });
    }
  });
});
