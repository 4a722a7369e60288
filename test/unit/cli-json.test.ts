// --json of the mutating verbs a script calls: one document on stdout, for
// a success and for a failure, run against the fake host (docs/json.md).
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { beforeEach, describe, it } from "node:test";
import { paths } from "../../src/base/paths.ts";
import { VERBS } from "../../src/cli/table.ts";
import { switchPlan } from "../../src/ops/switch-plan.ts";
import { newIntent } from "../../src/plan/intent.ts";
import { capture } from "../lib/capture.ts";
import { FakeHost } from "../lib/fake-host.ts";
import { tempRoot } from "../lib/fake-store.ts";
import { interruptAfter, machineState, newInstance } from "../lib/interrupt.ts";
import { run } from "../lib/json-run.ts";

describe("--json of the mutating verbs", () => {
  let h: FakeHost;
  beforeEach(() => {
    tempRoot(["foo-0.1", "foo-0.2", "broken"]);
    h = new FakeHost();
  });

  it("is offered by every verb a script calls, and by no other mutating verb", () => {
    const scripted = VERBS.filter((v) => v.scripted).map((v) => v.name);
    assert.deepEqual(scripted.sort(), [
      "cutover-instance",
      "delete-image",
      "delete-instance",
      "delete-machine",
      "disable",
      "enable",
      "fallback-instance",
      "pin",
      "poweroff",
      "prune",
      "recover",
      "reset",
      "restart",
      "set-carry",
      "set-keep",
      "set-services",
      "stage-image",
      "start",
      "terminate",
      "unpin",
    ]);
    // The others hand the terminal to a command in the container.
    const rest = VERBS.filter((v) => v.mutates && !v.scripted).map((v) => v.name);
    assert.deepEqual(rest.sort(), ["configure", "shell"]);
  });

  it("says whether start, poweroff, restart and terminate changed the container's state", async () => {
    await run(h, ["cutover-instance", "web", "foo-0.1"]);
    const doc = (verb: string, changed: boolean, more: Record<string, unknown>) => ({
      version: 1,
      verb,
      machine: "web",
      changed,
      ...more,
      error: null,
    });
    const up = { running: true, booted: true, settled: null };
    assert.deepEqual(await run(h, ["start", "web"]), doc("start", false, up));
    assert.deepEqual(await run(h, ["poweroff", "web"]), doc("poweroff", true, { running: false }));
    assert.deepEqual(await run(h, ["poweroff", "web"]), doc("poweroff", false, { running: false }));
    const noBoot = { running: true, booted: false, settled: null };
    assert.deepEqual(await run(h, ["start", "web", "--no-block"]), doc("start", true, noBoot));
    // Only asked: the container shuts down after boxctl returned.
    const asked = await run(h, ["poweroff", "web", "--no-block"]);
    assert.deepEqual(asked, doc("poweroff", true, { running: true }));
    assert.deepEqual(await run(h, ["restart", "web"]), doc("restart", true, up));
    const off = { running: false };
    assert.deepEqual(await run(h, ["terminate", "web"]), doc("terminate", true, off));
    assert.deepEqual(await run(h, ["terminate", "web"]), doc("terminate", false, off));
    // What a start put back first, as recover --json says it.
    rmSync(paths.nspawnFile("web"));
    const settled = { ...up, settled: "unit-outdated" };
    assert.deepEqual(await run(h, ["start", "web"]), doc("start", true, settled));
    rmSync(paths.nspawnFile("web"));
    assert.deepEqual(await run(h, ["restart", "web"]), doc("restart", true, settled));
  });

  it("says that a start which failed to boot changed the container, and that it is not running", async () => {
    await run(h, ["cutover-instance", "web", "foo-0.1"]);
    await run(h, ["poweroff", "web"]);
    h.failsToBoot.add(paths.upper("web", 1));
    const doc = await run(h, ["start", "web", "--timeout", "1"]);
    const { error, ...rest } = doc;
    assert.deepEqual(rest, {
      version: 1,
      verb: "start",
      machine: "web",
      changed: true,
      running: false,
    });
    assert.ok((error as { message: string } | null)?.message, "the error is said");
  });

  it("says whether enable, disable and the set- verbs changed the setting", async () => {
    await run(h, ["cutover-instance", "web", "foo-0.1"]);
    const said = async (argv: string[]) => {
      const { version, verb, machine, error, ...rest } = await run(h, argv);
      assert.deepEqual([version, verb, machine, error], [1, argv[0], "web", null]);
      return rest;
    };
    assert.deepEqual(await said(["enable", "web"]), { changed: true, enabled: true });
    assert.deepEqual(await said(["enable", "web"]), { changed: false, enabled: true });
    assert.deepEqual(await said(["disable", "web"]), { changed: true, enabled: false });
    const nginx = { services: ["nginx"] };
    assert.deepEqual(await said(["set-services", "web", "nginx"]), { changed: true, ...nginx });
    assert.deepEqual(await said(["set-services", "web", "nginx"]), { changed: false, ...nginx });
    // A unit the running container lacks is stored, and named on stderr; stdout stays JSON.
    h.missingInMachine.add("ngnix");
    const warned = await capture("stderr", async () =>
      assert.deepEqual(await said(["set-services", "web", "ngnix"]), {
        changed: true,
        services: ["ngnix"],
      }),
    );
    assert.match(warned, /^boxctl: warning: web has no usable unit ngnix\.service \(not-found\)/);
    await said(["set-services", "web", "nginx"]);
    // identity is the default policy, so setting it changes nothing.
    assert.deepEqual(await said(["set-carry", "web", "identity"]), {
      changed: false,
      carry: "identity",
    });
    assert.deepEqual(await said(["set-carry", "web", "identity,etc"]), {
      changed: true,
      carry: "identity,etc",
    });
    assert.deepEqual(await said(["set-keep", "web", "2"]), { changed: true, keep: 2 });
    assert.deepEqual(await said(["set-keep", "web", "2"]), { changed: false, keep: 2 });
    assert.deepEqual(await said(["set-keep", "web", "off"]), { changed: true, keep: null });
  });

  it("recover says what it finished, and where the machine stands", async () => {
    await run(h, ["cutover-instance", "web", "foo-0.1"]);
    const where = { current: { gen: 1, image: "foo-0.1" }, fallback: null, running: true };
    const calm = await run(h, ["recover", "web"]);
    assert.deepEqual(calm, {
      version: 1,
      verb: "recover",
      machine: "web",
      changed: false,
      interrupted: null,
      settled: null,
      ...where,
      error: null,
    });
    // A cutover killed after its first steps: recover rolls it back.
    const m = machineState("web");
    const target = newInstance(2, "foo-0.2");
    const intent = newIntent("cutover-instance", m, target, true);
    await interruptAfter(
      h,
      "web",
      switchPlan(m, intent, target, true, { timeoutMs: 20_000 }),
      "create-instance",
    );
    const doc = await run(h, ["recover", "web"]);
    assert.equal(doc.changed, true);
    assert.deepEqual(doc.interrupted, {
      verb: "cutover-instance",
      target: { gen: 2, image: "foo-0.2" },
    });
    assert.deepEqual(
      [doc.settled, doc.current, doc.fallback, doc.running],
      [null, where.current, null, true],
    );
  });

  it("says what a cutover and a fallback changed", async () => {
    const first = await run(h, ["cutover-instance", "web", "foo-0.1"]);
    assert.deepEqual(first, {
      version: 1,
      verb: "cutover-instance",
      machine: "web",
      changed: true,
      result: "ok",
      target: { gen: 1, image: "foo-0.1" },
      current: { gen: 1, image: "foo-0.1" },
      fallback: null,
      running: true,
      carry: null,
      error: null,
    });
    const second = await run(h, ["cutover-instance", "web", "foo-0.2"]);
    // The default policy: identity, of which the fake host's empty images have none.
    assert.deepEqual(second.carry, { policy: "identity", identity: [], etc: null, paths: [] });
    const back = await run(h, ["fallback-instance", "web"]);
    assert.deepEqual(
      [back.current, back.fallback],
      [
        { gen: 1, image: "foo-0.1" },
        { gen: 2, image: "foo-0.2" },
      ],
    );
  });

  it("says what failed, and where the machine is now, for a cutover that fell back", async () => {
    await run(h, ["cutover-instance", "web", "foo-0.1"]);
    h.failsToBoot.add(paths.upper("web", 2));
    const doc = await run(h, ["cutover-instance", "web", "broken"]);
    assert.equal(doc.result, "rolled-back");
    assert.equal(doc.changed, true);
    assert.deepEqual(doc.target, { gen: 2, image: "broken" });
    assert.deepEqual(doc.current, { gen: 1, image: "foo-0.1" });
    assert.equal(doc.running, true);
    assert.equal(doc.step, "restart");
    assert.match((doc.error as { message: string }).message, /web is running on instance 1/);
    // The cause, as the first error on stderr says it: what a script (the Ansible module) reports.
    const cause = doc.cause as { message: string; hint: string | null };
    assert.match(cause.message, /^container web stopped while booting \(unit failed/);
    assert.equal(cause.hint, "see: journalctl -u systemd-nspawn@web.service");
  });

  it("delete-machine: what it deleted; a running machine is refused and changes nothing", async () => {
    await run(h, ["cutover-instance", "web", "foo-0.1"]);
    await run(h, ["cutover-instance", "web", "foo-0.2"]);
    const refused = await run(h, ["delete-machine", "web", "--yes"]);
    assert.equal(refused.changed, false);
    assert.match((refused.error as { message: string }).message, /web is running/);
    await run(h, ["poweroff", "web"]);
    assert.deepEqual(await run(h, ["delete-machine", "web", "--yes"]), {
      version: 1,
      verb: "delete-machine",
      changed: true,
      machine: "web",
      instances: [
        { gen: 1, image: "foo-0.1" },
        { gen: 2, image: "foo-0.2" },
      ],
      wasEnabled: false,
      keptMountPoint: false,
      completedInterrupted: false,
      error: null,
    });
  });

  it("reports a refusal as changing nothing", async () => {
    await run(h, ["cutover-instance", "web", "foo-0.1"]);
    const doc = await run(h, ["delete-instance", "web", "foo-0.1"]);
    assert.equal(doc.changed, false);
    assert.match((doc.error as { message: string }).message, /never deletes the current instance/);
  });
});
