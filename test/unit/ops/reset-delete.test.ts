// reset and delete-instance against a fake host.
import assert from "node:assert/strict";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { beforeEach, describe, it } from "node:test";
import { paths } from "../../../src/base/paths.ts";
import { mountUnitName } from "../../../src/host/systemd.ts";
import { currentHint, deleteInstance } from "../../../src/ops/delete-instance.ts";
import { inUseHint } from "../../../src/ops/images.ts";
import { reset } from "../../../src/ops/reset.ts";
import { cutover } from "../../../src/ops/switch.ts";
import { loadMachine, type MachineState } from "../../../src/store/machine.ts";
import { FakeHost } from "../../lib/fake-host.ts";
import { tempRoot } from "../../lib/fake-store.ts";

const M = "app1";
const opts = { timeoutMs: 15_000 };

describe("reset and delete-instance", () => {
  let h: FakeHost;
  beforeEach(async () => {
    tempRoot(["foo-0.1", "foo-0.2"]);
    h = new FakeHost();
    await cutover(h, M, "foo-0.1", opts);
    writeFileSync(`${paths.upper(M, 1)}/a`, "1\n");
    await cutover(h, M, "foo-0.2", opts);
    writeFileSync(`${paths.upper(M, 2)}/b`, "2\n");
    h.calls.length = 0;
  });

  it("reset of the running current instance stops, empties, mounts and starts it again", async () => {
    await reset(h, M, "foo-0.2", { yes: true, ...opts });
    assert.deepEqual(readdirSync(paths.upper(M, 2)), []);
    assert.ok(existsSync(`${paths.upper(M, 1)}/a`), "other instances keep their changes");
    const c = h.commands;
    const stop = c.indexOf(`systemctl stop systemd-nspawn@${M}.service`);
    const rm = c.findIndex(
      (x) => x.startsWith("rm -rf --one-file-system --") && x.endsWith("upper.discarded"),
    );
    const start = c.lastIndexOf(`systemctl start systemd-nspawn@${M}.service`);
    assert.ok(stop >= 0 && rm > stop && start > rm, c.join("\n"));
    assert.equal(h.units.get(`systemd-nspawn@${M}.service`)?.active, "active");
    // Its boot wait takes the user's --timeout.
    for (const w of h.calls.filter((x) => x.argv.includes("is-system-running")))
      assert.ok((w.timeoutMs ?? 0) <= opts.timeoutMs);
  });

  it("reset, when systemd cannot stop the mount unit: unmounts by hand, and mounts again only once systemd has noticed", async () => {
    // As on cgroup v1 hosts, where systemd could not spawn umount; and systemd learns of the
    // umount by hand from the mount table, three looks later: a start before that mounts nothing.
    h.failsToStop.add(mountUnitName(paths.machineRoot(M)));
    h.unmountLag = 3;
    await reset(h, M, "foo-0.2", { yes: true, ...opts });
    assert.equal(h.mounts.get(paths.machineRoot(M)), paths.upper(M, 2));
    assert.equal(h.units.get(`systemd-nspawn@${M}.service`)?.active, "active");
    assert.ok(h.commands.includes(`umount ${paths.machineRoot(M)}`), h.commands.join("\n"));
  });

  it("reset of a kept instance changes nothing that runs", async () => {
    await reset(h, M, "foo-0.1", { yes: true, ...opts });
    assert.deepEqual(readdirSync(paths.upper(M, 1)), []);
    assert.ok(!h.commands.some((x) => x.includes("systemd-nspawn@")), h.commands.join("\n"));
  });

  it("delete-instance removes the fallback with one rm and forgets it", async () => {
    await deleteInstance(h, M, "foo-0.1", {});
    assert.ok(h.commands.includes(`rm -rf --one-file-system -- ${paths.instance(M, 1)}`));
    assert.equal(existsSync(paths.instance(M, 1)), false);
    const m = loadMachine(M);
    assert.deepEqual([m?.current, m?.fallback, m?.instances.length], [2, null, 1]);
  });

  it("delete-instance refuses the current instance and changes nothing", async () => {
    await assert.rejects(
      deleteInstance(h, M, "foo-0.2", {}),
      /boxctl never deletes the current instance/,
    );
    assert.ok(existsSync(paths.instance(M, 2)));
    assert.equal(h.commands.filter((x) => x.startsWith("rm ")).length, 0);
  });
});

describe("the hints of a refused deletion name the generation", () => {
  const inst = (gen: number, image: string) => ({ gen, image, created: "", lastActive: null });
  const web = (current: number, fallback: number | null): MachineState =>
    ({
      name: "web",
      current,
      fallback,
      instances: [inst(1, "foo-0.1"), inst(2, "foo-0.1"), inst(3, "foo-0.2"), inst(4, "foo-0.1")],
    }) as MachineState;

  it("delete-instance without --instance, when the newest of the image is current: names the older ones", () => {
    assert.equal(
      currentHint(web(4, 3), inst(4, "foo-0.1"), false),
      "web's older instances of foo-0.1 are 1, 2: name one with --instance, e.g. boxctl delete-instance web foo-0.1 --instance 2",
    );
    const two = { ...web(2, 1), instances: [inst(1, "foo-0.1"), inst(2, "foo-0.1")] };
    assert.match(currentHint(two, inst(2, "foo-0.1"), false), /older instance of foo-0\.1 is 1:/);
  });

  it("delete-instance of the current one, named or alone of its image: go back or cut over", () => {
    assert.match(
      currentHint(web(4, 3), inst(4, "foo-0.1"), true),
      /^go back first \(boxctl fallback-instance web\)/,
    );
    assert.match(
      currentHint(web(3, null), inst(3, "foo-0.2"), false),
      /^cut over to another image first/,
    );
  });

  it("delete-image: one command per deletable instance, and a cutover for a current one", () => {
    assert.equal(
      inUseHint("foo-0.1", [
        { machine: "web", gen: 1, role: "fallback" },
        { machine: "web", gen: 2, role: "current" },
      ]),
      "delete that instance: boxctl delete-instance web foo-0.1 --instance 1; cut web over to another image first (boxctl cutover-instance web IMAGE)",
    );
    const many = [1, 2, 3, 4, 5].map((gen) => ({ machine: "db", gen, role: "other" as const }));
    assert.match(
      inUseHint("foo-0.1", many),
      /^delete those instances: .*--instance 3, 2 more \(see boxctl history NAME\)$/,
    );
    assert.doesNotMatch(inUseHint("foo-0.1", many), /cut /);
  });
});
