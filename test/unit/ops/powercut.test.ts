// Power cuts (issue 14), against the fake host: a switch interrupted after
// each step, then everything a reboot loses is lost (/run, the mounts, the
// units' states), then boot-time recovery (recover --boot) runs before
// systemd mounts and starts the machine. What systemd then mounts must be
// the instance machine.json calls current, and recovery at boot must not
// start or stop a unit (that would wait on or cancel the boot's own jobs).
import assert from "node:assert/strict";
import { existsSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeEach, describe, it } from "node:test";
import { paths } from "../../../src/base/paths.ts";
import { journalEntry } from "../../../src/host/journal.ts";
import { deletePlan } from "../../../src/ops/delete-instance.ts";
import { attention } from "../../../src/ops/drift.ts";
import { recoverAtBoot } from "../../../src/ops/guard.ts";
import { switchCommitted } from "../../../src/ops/recover.ts";
import { resetPlan } from "../../../src/ops/reset.ts";
import { cutover, fallback } from "../../../src/ops/switch.ts";
import { switchPlan } from "../../../src/ops/switch-plan.ts";
import {
  recoveryUnitPath,
  recoveryUnitText,
  recoveryWantsLink,
} from "../../../src/overlay/recovery-unit.ts";
import { mountUnitPath, runtimeUnitPaths, upperAtNextBoot } from "../../../src/overlay/wiring.ts";
import type { Plan } from "../../../src/plan/apply.ts";
import { newIntent, readIntent } from "../../../src/plan/intent.ts";
import {
  CUTOVER_STEPS,
  DELETE_STEPS,
  FALLBACK_STEPS,
  RESET_STEPS,
} from "../../../src/plan/steps.ts";
import { emptyMachine, instanceOf, type MachineState } from "../../../src/store/machine.ts";
import { FakeHost } from "../../lib/fake-host.ts";
import { tempRoot } from "../../lib/fake-store.ts";
import { interruptAfter as interruptAt, machineState, newInstance } from "../../lib/interrupt.ts";

const M = "web1";
const opts = { timeoutMs: 20_000 };
const state = (): MachineState => machineState(M);

const interruptAfter = (h: FakeHost, plan: Plan, step: string) => interruptAt(h, M, plan, step);

/** What a power cut and a boot up to boxctl-recover.service do: /run and every mount and unit state gone. */
function powerCut(h: FakeHost): void {
  rmSync(join(paths.runtimeUnitDir(), ".."), { recursive: true, force: true });
  h.mounts.clear();
  h.units.clear();
  h.calls.length = 0;
  h.reloadCount = 0;
}

/** What systemd does after recovery at boot for an enabled machine: mount the root from the unit, start the container. */
async function systemdBoots(h: FakeHost): Promise<string | undefined> {
  await h.run(["systemctl", "start", mountUnitPath(M).split("/").pop() as string]);
  await h.run(["systemctl", "start", `systemd-nspawn@${M}.service`]);
  return h.mounts.get(paths.machineRoot(M));
}

describe("power cuts", () => {
  let h: FakeHost;
  beforeEach(async () => {
    tempRoot(["foo-0.1", "foo-0.2", "foo-0.3"]);
    h = new FakeHost();
    await cutover(h, M, "foo-0.1", opts);
    await cutover(h, M, "foo-0.2", opts);
  });

  it("a switch never names an unverified instance in /etc; commit moves it there from /run", async () => {
    const m = state();
    const target = newInstance(3, "foo-0.3");
    const intent = newIntent("cutover-instance", m, target, true);
    await interruptAfter(h, switchPlan(m, intent, target, true, opts), "wait-booted");
    assert.equal(upperAtNextBoot(M), paths.upper(M, 2), "/etc still names the current instance");
    assert.ok(existsSync(runtimeUnitPaths(M).dropIn), "the switch's unit is in /run");
    assert.equal(h.mounts.get(paths.machineRoot(M)), paths.upper(M, 3), "and it is mounted");
    await cutover(h, M, "foo-0.3", opts);
    assert.equal(upperAtNextBoot(M), paths.upper(M, state().current ?? 0));
    assert.ok(!existsSync(runtimeUnitPaths(M).dropIn) && !existsSync(runtimeUnitPaths(M).fragment));
  });

  it("a first cutover stages a whole unit in /run (a drop-in needs a fragment)", async () => {
    const m = emptyMachine("new1");
    const target = newInstance(1, "foo-0.1");
    const intent = newIntent("cutover-instance", m, target, false);
    await interruptAt(h, "new1", switchPlan(m, intent, target, true, opts), "remount");
    assert.ok(existsSync(runtimeUnitPaths("new1").fragment));
    assert.ok(!existsSync(mountUnitPath("new1")));
    assert.equal(h.mounts.get(paths.machineRoot("new1")), paths.upper("new1", 1));
  });

  for (const [verb, steps] of [
    ["cutover-instance", CUTOVER_STEPS],
    ["fallback-instance", FALLBACK_STEPS],
  ] as const) {
    for (const step of steps) {
      it(`${verb}: power cut after '${step}', then boot`, async () => {
        const m = state();
        const isNew = verb === "cutover-instance";
        const target = isNew
          ? newInstance(3, "foo-0.3")
          : (instanceOf(m, m.fallback) as NonNullable<ReturnType<typeof instanceOf>>);
        const intent = newIntent(verb, m, target, true);
        await interruptAfter(h, switchPlan(m, intent, target, isNew, opts), step);
        const committed = switchCommitted(intent, state());
        powerCut(h);
        // Before recovery: what the boot would mount is already an instance the record calls current or the target of a committed switch.
        const before = upperAtNextBoot(M);
        assert.ok([paths.upper(M, 2), paths.upper(M, target.gen)].includes(before ?? ""));
        if (!committed) assert.equal(before, paths.upper(M, 2));
        assert.equal(await recoverAtBoot(h), 0);
        const starts = h.commands.filter((c) => / (start|stop|restart) /.test(c));
        // Only the view a completed switch's mount now needs, which the boot's jobs did not plan.
        const view = `systemctl start --no-block boxctl-view-${M}-${target.gen}.service`;
        assert.deepEqual(
          starts,
          committed && target.uidBase && before !== paths.upper(M, target.gen) ? [view] : [],
          "recovery at boot starts and stops nothing else",
        );
        const after = state();
        assert.equal(readIntent(M), null);
        assert.deepEqual(
          [after.current, after.fallback],
          committed ? [target.gen, 2] : [2, isNew ? 1 : 1],
        );
        assert.equal(await systemdBoots(h), paths.upper(M, after.current ?? 0));
        const rec = h.journal.find((e) => e.BOXCTL_OPERATION === "recover");
        assert.equal(rec?.BOXCTL_RESULT, committed ? "completed" : "rolled-back");
        assert.equal(rec?.BOXCTL_AT_BOOT, "yes");
        assert.equal(attention(h, after), null, "status sees nothing amiss");
      });
    }
  }

  for (const step of RESET_STEPS) {
    it(`reset of the current instance: power cut after '${step}', then boot`, async () => {
      writeFileSync(`${paths.upper(M, 2)}/marker`, "x");
      const m = state();
      const inst = instanceOf(m, 2) as NonNullable<ReturnType<typeof instanceOf>>;
      const intent = newIntent("reset", m, inst, true);
      await interruptAfter(h, resetPlan(m, intent, inst, opts.timeoutMs), step);
      powerCut(h);
      assert.equal(await recoverAtBoot(h), 0);
      assert.deepEqual(
        h.commands.filter((c) => / (start|stop|restart) /.test(c)),
        [],
      );
      assert.equal(readIntent(M), null);
      // Confirmed, so finished: the changes are gone, the instance is still current.
      assert.ok(!existsSync(`${paths.upper(M, 2)}/marker`));
      assert.ok(!existsSync(`${paths.upper(M, 2)}.discarded`));
      assert.equal(state().current, 2);
      assert.equal(await systemdBoots(h), paths.upper(M, 2));
    });
  }

  for (const step of DELETE_STEPS) {
    it(`delete-instance: power cut after '${step}', then boot`, async () => {
      const m = state();
      const inst = instanceOf(m, 1) as NonNullable<ReturnType<typeof instanceOf>>;
      await interruptAfter(
        h,
        deletePlan(m, newIntent("delete-instance", m, inst, false), inst),
        step,
      );
      powerCut(h);
      assert.equal(await recoverAtBoot(h), 0);
      assert.equal(readIntent(M), null);
      assert.equal(instanceOf(state(), 1), undefined, "not listed");
      assert.ok(!existsSync(paths.instance(M, 1)), "and gone");
      assert.equal(await systemdBoots(h), paths.upper(M, 2));
    });
  }

  it("a clean boot has nothing to settle and reloads nothing", async () => {
    powerCut(h);
    assert.equal(await recoverAtBoot(h), 0);
    assert.deepEqual(h.commands, []);
  });

  it("the journal records a cutover, a failed check and the automatic fallback", async () => {
    h.checkExit = 1;
    await assert.rejects(cutover(h, M, "foo-0.3", { ...opts, check: "false" }));
    const results = h.journal
      .filter((e) => e.BOXCTL_MACHINE === M && e.BOXCTL_OPERATION === "cutover-instance")
      .map((e) => e.BOXCTL_RESULT);
    assert.deepEqual(results.slice(-3), ["started", "check-failed", "rolled-back"]);
    const fb = h.journal.at(-1);
    assert.equal(fb?.SYSLOG_IDENTIFIER, "boxctl");
    assert.equal(fb?.BOXCTL_INSTANCE, "2");
    assert.equal(fb?.BOXCTL_IMAGE, "foo-0.2");
    h.checkExit = 0;
    await fallback(h, M, opts);
    assert.deepEqual(
      h.journal
        .filter((e) => e.BOXCTL_OPERATION === "fallback-instance")
        .map((e) => e.BOXCTL_RESULT),
      ["started", "booted", "ok"],
    );
  });

  it("status names a pending operation and a root mounted from another instance", async () => {
    const m = state();
    writeFileSync(
      paths.intent(M),
      JSON.stringify({ ...newIntent("reset", m, { gen: 2, image: "foo-0.2" }, true), pid: 999999 }),
    );
    assert.equal(attention(h, m)?.reason, "pending-operation");
    assert.equal(attention(h, m)?.settle, `boxctl recover ${M}`);
    rmSync(paths.intent(M));
    h.mounts.set(paths.machineRoot(M), paths.upper(M, 1));
    assert.match(
      attention(h, m)?.message ?? "",
      /mounted from instance 1, but the current instance is 2/,
    );
  });
});

describe("the boot-time recovery unit", () => {
  it("runs boxctl as it was started, only when an intent.json is left, before the mounts", () => {
    tempRoot([]);
    const text = recoveryUnitText(["/usr/bin/node", "/usr/local/bin/boxctl"], "/var/lib/boxctl");
    assert.match(text, /^ExecStart=\/usr\/bin\/node \/usr\/local\/bin\/boxctl recover --boot$/m);
    assert.match(text, /^ConditionPathExistsGlob=\/var\/lib\/boxctl\/machines\/\*\/intent\.json$/m);
    assert.match(text, /^DefaultDependencies=no$/m);
    assert.doesNotMatch(
      text,
      /local-fs\.target/,
      "the mounts it precedes are Before=local-fs.target",
    );
    const odd = recoveryUnitText(["/usr/bin/node", "/opt/my tools/100%$x.mjs"], "/srv/box");
    assert.match(
      odd,
      /^ExecStart=\/usr\/bin\/node "\/opt\/my tools\/100%%\$\$x\.mjs" recover --boot$/m,
    );
    assert.match(odd, /^Environment=BOXCTL_STORE=\/srv\/box$/m);
  });

  it("is installed with the first mount unit", async () => {
    tempRoot(["foo-0.1"]);
    await cutover(new FakeHost(), "a1", "foo-0.1", opts);
    assert.match(readFileSync(recoveryUnitPath(), "utf8"), /recover --boot/);
    const mount = readFileSync(mountUnitPath("a1"), "utf8");
    assert.match(mount, /^After=boxctl-recover\.service$/m);
    // Ordering only: a Wants= would start recovery at every mount, in the middle of a cutover too.
    assert.doesNotMatch(mount, /^Wants=/m);
    assert.equal(readlinkSync(recoveryWantsLink()), "../boxctl-recover.service");
  });

  it("journal entries are one field per line, newlines flattened", () => {
    const t = journalEntry({
      machine: "w",
      operation: "recover",
      result: "failed",
      message: "a\nb",
    });
    assert.match(t, /^MESSAGE=w: a b$/m);
    assert.match(t, /^SYSLOG_IDENTIFIER=boxctl$/m);
  });
});
