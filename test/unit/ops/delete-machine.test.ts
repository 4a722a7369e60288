// delete-machine against a fake host: what it removes and what it leaves,
// its refusals, and an interruption after every step, by a kill (the next
// command finishes it) or a power cut (recovery at boot finishes it).
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { beforeEach, describe, it } from "node:test";
import { paths } from "../../../src/base/paths.ts";
import { mountUnitName } from "../../../src/host/systemd.ts";
import { deleteMachine } from "../../../src/ops/delete-machine.ts";
import { deleteMachinePlan, machineGens } from "../../../src/ops/delete-machine-plan.ts";
import { attention } from "../../../src/ops/drift.ts";
import { recoverAtBoot, recoverCommand } from "../../../src/ops/guard.ts";
import { recoverInterrupted } from "../../../src/ops/recover.ts";
import { cutover } from "../../../src/ops/switch.ts";
import { viewUnitName } from "../../../src/overlay/views.ts";
import { mountUnitPath, nspawnGuardPath } from "../../../src/overlay/wiring.ts";
import { newIntent, readIntent } from "../../../src/plan/intent.ts";
import { DELETE_MACHINE_STEPS } from "../../../src/plan/steps.ts";
import { listMachineNames, loadMachine } from "../../../src/store/machine.ts";
import { FakeHost } from "../../lib/fake-host.ts";
import { tempRoot } from "../../lib/fake-store.ts";
import { interruptAfter, machineState } from "../../lib/interrupt.ts";

const M = "old1";
const opts = { timeoutMs: 20_000 };
const nspawnUnit = `systemd-nspawn@${M}.service`;

/** old1 on foo-0.2 (gen 2, private users) with gen 1 as fallback, enabled, stopped; its NAME.nspawn has a line of the user's. */
async function retired(h: FakeHost): Promise<void> {
  await cutover(h, M, "foo-0.1", opts);
  await cutover(h, M, "foo-0.2", opts);
  writeFileSync(`${paths.upper(M, 2)}/marker`, "two\n");
  const nspawn = paths.nspawnFile(M);
  writeFileSync(nspawn, `${readFileSync(nspawn, "utf8")}\n[Network]\nVirtualEthernet=no\n`);
  await h.run(["machinectl", "enable", M]);
  await h.run(["systemctl", "stop", nspawnUnit]);
  h.calls.length = 0;
}

/** Everything delete-machine takes away is gone; what it must leave is there. */
function assertDeleted(h: FakeHost): void {
  assert.deepEqual(listMachineNames(), []);
  assert.equal(loadMachine(M), null);
  assert.equal(readIntent(M), null);
  assert.equal(existsSync(paths.machine(M)), false, "nothing of it in the store");
  assert.equal(existsSync(paths.machineRoot(M)), false, "no mount point");
  assert.equal(h.mounts.has(paths.machineRoot(M)), false);
  assert.equal(existsSync(mountUnitPath(M)), false, "no mount unit");
  for (const g of [1, 2])
    assert.equal(existsSync(join(paths.unitDir(), viewUnitName(M, g))), false, "no view unit");
  assert.equal(existsSync(dirname(nspawnGuardPath(M))), false, "no drop-in, nor its directory");
  assert.equal(h.enabled.has(M), false, "no longer starts with the host");
  assert.equal(
    readFileSync(paths.nspawnFile(M), "utf8"),
    "[Network]\nVirtualEthernet=no\n",
    "the user's settings stay, boxctl's go",
  );
  assert.ok(existsSync(paths.imageRoot("foo-0.1")) && existsSync(paths.imageRoot("foo-0.2")));
}

describe("delete-machine", () => {
  let h: FakeHost;
  beforeEach(async () => {
    tempRoot(["foo-0.1", "foo-0.2"]);
    h = new FakeHost();
    await retired(h);
  });

  it("deletes a stopped machine, its instances, units and mount point, and leaves the images", async () => {
    const res = await deleteMachine(h, M, { yes: true });
    assert.deepEqual(res, {
      machine: M,
      instances: [
        { gen: 1, image: "foo-0.1" },
        { gen: 2, image: "foo-0.2" },
      ],
      wasEnabled: true,
      keptMountPoint: false,
      completedInterrupted: false,
    });
    assertDeleted(h);
    assert.ok(h.reloadCount > 0, "systemd forgot the units");
    assert.equal(h.journal.at(-1)?.BOXCTL_OPERATION, "delete-machine");
  });

  it("leaves the admin's own drop-ins for the container's unit", async () => {
    const own = join(dirname(nspawnGuardPath(M)), "override.conf");
    writeFileSync(own, "[Service]\nCPUQuota=50%\n");
    await deleteMachine(h, M, { yes: true });
    assert.deepEqual(readdirSync(dirname(own)), ["override.conf"]);
  });

  it("frees the name for a new machine", async () => {
    await deleteMachine(h, M, { yes: true });
    await cutover(h, M, "foo-0.1", opts);
    assert.deepEqual(
      machineState(M).instances.map((i) => i.gen),
      [1],
    );
    assert.equal(existsSync(`${paths.upper(M, 1)}/marker`), false);
    assert.equal(h.units.get(nspawnUnit)?.active, "active");
  });

  it("refuses a running machine and changes nothing", async () => {
    await h.run(["systemctl", "start", nspawnUnit]);
    await assert.rejects(deleteMachine(h, M, { yes: true }), /old1 is running.*stopped machine/);
    assert.equal(machineState(M).current, 2);
    assert.ok(existsSync(`${paths.upper(M, 2)}/marker`));
    assert.equal(readIntent(M), null);
  });

  it("without a terminal, needs --yes, and changes nothing without it", async () => {
    await assert.rejects(deleteMachine(h, M, {}), /needs confirmation/);
    assert.equal(machineState(M).current, 2);
    assert.equal(readIntent(M), null);
  });

  it("--dry-run changes nothing", async () => {
    const dry = new FakeHost({ dryRun: true });
    await deleteMachine(dry, M, {});
    assert.equal(machineState(M).current, 2);
    assert.ok(existsSync(`${paths.upper(M, 2)}/marker`));
    assert.ok(existsSync(mountUnitPath(M)));
  });

  it("leaves a mount point that holds files written while nothing was mounted", async () => {
    await h.run(["umount", paths.machineRoot(M)]);
    writeFileSync(join(paths.machineRoot(M), "not-boxctls"), "x");
    const res = await deleteMachine(h, M, { yes: true });
    assert.equal(res?.keptMountPoint, true);
    assert.deepEqual(readdirSync(paths.machineRoot(M)), ["not-boxctls"]);
    assert.equal(loadMachine(M), null);
  });

  it("status flags a current instance emptied through its root (what machinectl remove does); recover leaves it", async () => {
    assert.equal(attention(h, machineState(M)), null);
    rmSync(join(paths.machineRoot(M), "etc"), { recursive: true });
    const a = attention(h, machineState(M));
    assert.equal(a?.reason, "root-emptied");
    assert.equal(a?.settle, `boxctl fallback-instance ${M}`);
    h.calls.length = 0;
    const res = await recoverCommand(h, M, {});
    assert.equal(res.settled, null);
    assert.deepEqual(
      h.commands.filter((c) => /(start|stop|restart|umount) /.test(c)),
      [],
    );
  });

  const facts = () => ({ gens: machineGens(M, loadMachine(M)), enabled: true });
  const plan = () =>
    deleteMachinePlan(
      M,
      newIntent("delete-machine", machineState(M), { gen: 2, image: "foo-0.2" }, false),
      facts(),
    );

  for (const step of DELETE_MACHINE_STEPS) {
    it(`killed after '${step}': the next command finishes it`, async () => {
      await interruptAfter(h, M, plan(), step);
      await recoverInterrupted(h, M, opts.timeoutMs);
      assertDeleted(h);
    });

    it(`killed after '${step}': delete-machine asked again finishes it and says so`, async () => {
      await interruptAfter(h, M, plan(), step);
      const res = await deleteMachine(h, M, { yes: true });
      assert.equal(res?.completedInterrupted, true);
      assertDeleted(h);
    });

    it(`power cut after '${step}': recovery at boot finishes it, and only replaces the boot's jobs for it`, async () => {
      await interruptAfter(h, M, plan(), step);
      rmSync(paths.runtimeUnitDir(), { recursive: true, force: true });
      h.mounts.clear();
      h.units.clear();
      h.calls.length = 0;
      assert.equal(await recoverAtBoot(h), 0);
      // Only its own units' queued starts are replaced, without waiting:
      // the container, its root's mount, and its views while their units exist.
      const units = [nspawnUnit, mountUnitName(paths.machineRoot(M))];
      if (DELETE_MACHINE_STEPS.indexOf(step) < DELETE_MACHINE_STEPS.indexOf("unwire"))
        units.push(viewUnitName(M, 1), viewUnitName(M, 2));
      assert.deepEqual(
        h.commands.filter((c) => / (start|stop|restart) /.test(c)),
        [`systemctl stop --no-block -- ${units.join(" ")}`],
      );
      assertDeleted(h);
    });
  }
});
