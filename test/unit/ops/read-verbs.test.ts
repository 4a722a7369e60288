// The read verbs' data and tables: status, list, diff (app-status: its own
// file). Their JSON is checked against docs/json.md's schemas.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BoxError } from "../../../src/base/errors.ts";
import { renderList, renderStatus } from "../../../src/cli/render/container.ts";
import { parseOpaque, unescapeGetfattr } from "../../../src/host/opaque.ts";
import { parseShow } from "../../../src/host/unit-state.ts";
import { parseListUnits, parseMachinectlList, wantedUnits } from "../../../src/host/units.ts";
import { buildAppStatus } from "../../../src/ops/app-status.ts";
import { diffTrees } from "../../../src/ops/diff.ts";
import { buildList } from "../../../src/ops/list.ts";
import { buildStatus } from "../../../src/ops/status.ts";
import type { MachineState } from "../../../src/store/machine.ts";
import { SHOW } from "../../lib/systemd.ts";

const machine = (name: string, extra: Partial<MachineState> = {}): MachineState => ({
  version: 1,
  name,
  current: 2,
  fallback: 1,
  instances: [
    { gen: 1, image: "foo-0.1", created: "2026-11-01T00:00:00.000Z", lastActive: null },
    { gen: 2, image: "foo-0.2", created: "2026-11-02T00:00:00.000Z", lastActive: null },
  ],
  lastOperation: {
    verb: "cutover-instance",
    started: "2026-11-02T00:00:00.000Z",
    finished: "2026-11-02T00:00:05.000Z",
    result: "ok",
  },
  ...extra,
});

describe("status", () => {
  const unit = parseShow(SHOW).get("systemd-nspawn@a.service");
  assert.ok(unit);
  it("builds the documented document", () => {
    const upper = "/var/lib/boxctl/machines/a/instances/2/upper";
    const s = buildStatus(
      machine("a", { services: ["nginx"] }),
      unit,
      { fstype: "overlay", source: "overlay", superOptions: `lowerdir=/x,upperdir=${upper}` },
      4096,
    );
    assert.equal(s.state, "running");
    assert.equal(s.enabled, true);
    assert.equal(s.current?.image, "foo-0.2");
    assert.equal(s.fallback?.gen, 1);
    assert.deepEqual(s.mount, {
      path: "/var/lib/machines/a",
      unit: "var-lib-machines-a.mount",
      mounted: true,
      instance: 2,
    });
    assert.deepEqual(s.changes, { path: upper, bytes: 4096 });
    assert.equal(s.lastOperation?.verb, "cutover-instance");
    assert.deepEqual(s.services, ["nginx"]);
    assert.equal(s.keep, null, "no keep setting: off");
    assert.equal(buildStatus(machine("a", { keep: 2 }), unit, null, null).keep, 2);
    assert.equal(s.nextPrivateUsers, true, "private users unless the machine chose otherwise");
  });
  it("says when the machine's next instance would run otherwise than its current one", () => {
    const instances = machine("a").instances.map((i) => ({ ...i, uidBase: 1879048192 }));
    const chose = buildStatus(machine("a", { instances, privateUsers: false }), unit, null, null);
    assert.equal(chose.nextPrivateUsers, false);
    assert.match(renderStatus(chose, false), /Users: +private: .*; new instances: not private\n/);
    const same = buildStatus(machine("a", { instances }), unit, null, null);
    assert.match(
      renderStatus(same, false),
      /Users: +private: root inside is uid 1879048192 on the host \(65536 uids\)\n/,
    );
    const back = buildStatus(machine("a"), unit, null, null);
    assert.match(renderStatus(back, false), /Users: +not private: .*; new instances: private\n/);
  });
  it("renders a legend line that --no-legend drops", () => {
    const s = buildStatus(machine("a"), unit, null, null);
    const text = renderStatus(s, true, Date.parse("2026-11-02T00:10:05.000Z"));
    assert.match(text, /^a \(managed by boxctl\)\n/);
    assert.match(text, /State: +running/);
    const later = renderStatus(s, false, Date.parse("2026-11-26T15:59:40.000Z"));
    assert.match(later, /State: +running since 2026-11-26T12:59:40\.000Z; 3h ago\n/);
    assert.match(text, /Mount: +\/var\/lib\/machines\/a not mounted/);
    assert.match(text, /Last op: +cutover-instance ok, 10min ago/);
    assert.doesNotMatch(renderStatus(s, false), /managed by boxctl/);
    assert.doesNotMatch(text, /Log:/, "no log for a unit that did not fail");
    assert.match(text, /Keep: +off: every instance stays \(see boxctl set-keep\)/);
    const kept = renderStatus(buildStatus(machine("a", { keep: 0 }), unit, null, null), false);
    assert.match(kept, /Keep: +after each cutover, every instance goes but the current, fallback/);
    const three = renderStatus(buildStatus(machine("a", { keep: 3 }), unit, null, null), false);
    assert.match(
      three,
      /Keep: +after each cutover, every instance goes but the current, fallback and pinned ones and the 3 newest others \(/,
    );
  });
  it("shows what a failed unit's last run logged", () => {
    const failed = { ...unit, activeState: "failed" };
    const log = [
      "execv(...) failed: Exec format error",
      "a.service: Failed with result 'exit-code'.",
    ];
    const text = renderStatus(buildStatus(machine("a"), failed, null, null, { log }), false);
    assert.match(text, /State: +failed\n/);
    const [first, second] = text.split("\n").filter((l) => /Exec format|Failed with/.test(l));
    assert.match(first ?? "", /^ {2}Log: +execv\(\.\.\.\) failed: Exec format error$/);
    assert.equal(second?.indexOf("a.service"), first?.indexOf("execv"), "the lines line up");
  });
});

describe("list", () => {
  const units = parseListUnits(
    '[{"unit":"systemd-nspawn@a.service","load":"loaded","active":"active","sub":"running"},' +
      '{"unit":"systemd-nspawn@b.service","load":"loaded","active":"failed","sub":"failed"}]',
  );
  const entries = buildList(
    [machine("b"), machine("a"), machine("c")],
    units,
    parseMachinectlList(
      '[{"machine":"a","class":"container","service":"systemd-nspawn"},{"machine":"zz","class":"container","service":"systemd-nspawn"}]',
    ),
    new Set(["systemd-nspawn@b.service"]),
  );
  it("lists managed machines with state and image, then other running ones", () => {
    assert.deepEqual(
      entries.map((e) => [e.name, e.managed, e.state, e.enabled, e.image, e.generation]),
      [
        ["a", true, "running", false, "foo-0.2", 2],
        ["b", true, "failed", true, "foo-0.2", 2],
        ["c", true, "stopped", false, "foo-0.2", 2],
        ["zz", false, "running", null, null, null],
      ],
    );
    assert.ok(entries.every((e) => e.error === null));
  });
  it("keeps a managed machine with an unreadable state file as managed, with the reason", () => {
    const bad = buildList(
      [machine("b")],
      units,
      parseMachinectlList('[{"machine":"a","class":"container","service":"systemd-nspawn"}]'),
      new Set(),
      [{ name: "a", error: new BoxError("state file /x/a/machine.json is corrupt") }],
    );
    assert.deepEqual(
      bad.map((e) => [e.name, e.managed, e.state, e.image, e.error]),
      [
        ["a", true, "running", null, "state file /x/a/machine.json is corrupt"],
        ["b", true, "failed", "foo-0.2", null],
      ],
    );
    assert.match(renderList(bad, false), /^a +running +disabled +\(unreadable\)/);
  });
  it("finds enabled units in .wants directories", () => {
    const dir = mkdtempSync(join(tmpdir(), "wants-"));
    mkdirSync(join(dir, "machines.target.wants"));
    symlinkSync("/dev/null", join(dir, "machines.target.wants", "systemd-nspawn@x.service"));
    writeFileSync(join(dir, "other.wants"), "");
    assert.deepEqual([...wantedUnits(dir)], ["systemd-nspawn@x.service"]);
    assert.deepEqual([...wantedUnits(join(dir, "missing"))], []);
    rmSync(dir, { recursive: true });
  });
  it("aligns the table under a legend, with a footer", () => {
    const t = renderList(entries, true).split("\n");
    assert.match(t[0] ?? "", /^MACHINE +STATE +BOOT +IMAGE +GEN +FALLBACK +MANAGER$/);
    assert.equal(t[1]?.indexOf("running"), t[0]?.indexOf("STATE"));
    assert.match(renderList(entries, true), /4 machines listed \(3 managed by boxctl\)/);
    const bare = renderList(entries, false);
    assert.doesNotMatch(bare, /MACHINE|listed/);
    assert.equal(bare.trim().split("\n").length, 4);
  });
});

describe("documented JSON schemas", () => {
  it("match what the builders produce", async () => {
    const v = await import("valibot");
    const { AppStatusJson, ListJson, StatusJson } = await import("../../../src/cli/json-schema.ts");
    const unit = parseShow(SHOW).get("systemd-nspawn@a.service");
    assert.ok(unit);
    const status = { version: 1, ...buildStatus(machine("a"), unit, null, 1) };
    assert.ok(v.safeParse(StatusJson, status).success);
    assert.ok(!v.safeParse(StatusJson, { ...status, extra: 1 }).success);
    const machines = buildList(
      [machine("a")],
      new Map(),
      [{ name: "z", class: "container", service: "x", os: "", osVersion: "" }],
      new Set(),
    );
    assert.ok(v.safeParse(ListJson, { version: 1, machines }).success);
    const app = { version: 1, ...buildAppStatus("a", ["x"], "Id=x.service\nActiveState=active\n") };
    assert.ok(v.safeParse(AppStatusJson, app).success);
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
