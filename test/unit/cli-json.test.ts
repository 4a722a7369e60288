// --json of the mutating verbs a script calls: one document on stdout, for
// a success and for a failure, run against the fake host (docs/json.md).
import assert from "node:assert/strict";
import { readlinkSync, writeFileSync } from "node:fs";
import { beforeEach, describe, it } from "node:test";
import { BoxError } from "../../src/base/errors.ts";
import { paths } from "../../src/base/paths.ts";
import { failedJson } from "../../src/cli/output.ts";
import { parseVerbArgs } from "../../src/cli/parse.ts";
import { findVerb, VERBS } from "../../src/cli/table.ts";
import { switchPlan } from "../../src/ops/switch-plan.ts";
import { newIntent } from "../../src/plan/intent.ts";
import { capture } from "../lib/capture.ts";
import { FakeHost } from "../lib/fake-host.ts";
import { tempRoot } from "../lib/fake-store.ts";
import { interruptAfter, machineState, newInstance } from "../lib/interrupt.ts";

/** Runs a verb as main.ts would, and returns what it printed on stdout. */
const captured = (fn: () => Promise<unknown>) => capture("stdout", fn);

async function run(h: FakeHost, argv: string[]): Promise<Record<string, unknown>> {
  const verb = findVerb(argv[0] as string);
  const { args, opts } = parseVerbArgs(verb, [...argv.slice(1), "--json"]);
  const text = await captured(async () => {
    try {
      await verb.run?.({ verb, args, opts, r: h });
    } catch (e) {
      if (!(e instanceof BoxError)) throw e;
      failedJson({ verb }, e);
    }
  });
  return JSON.parse(text);
}

/**
 * Another command holds machine's lock: `flock -n` on its lock file fails at
 * once; `flock` without -n (--wait) waits, here until the holder is gone, and
 * so succeeds. The holder's "PID VERB" is what the test writes to the file.
 */
function heldElsewhere(h: FakeHost, machine: string): void {
  const flock = h.run.bind(h);
  h.run = (argv, o) =>
    argv[0] === "flock" &&
    argv.includes("-n") &&
    readlinkSync(`/proc/self/fd/${o?.fds?.[0]}`) === paths.lock(machine)
      ? Promise.resolve({ code: 1, stdout: "", stderr: "" })
      : flock(argv, o);
}

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
    const up = { running: true, booted: true };
    assert.deepEqual(await run(h, ["start", "web"]), doc("start", false, up));
    assert.deepEqual(await run(h, ["poweroff", "web"]), doc("poweroff", true, { running: false }));
    assert.deepEqual(await run(h, ["poweroff", "web"]), doc("poweroff", false, { running: false }));
    const noBoot = { running: true, booted: false };
    assert.deepEqual(await run(h, ["start", "web", "--no-block"]), doc("start", true, noBoot));
    // Only asked: the container shuts down after boxctl returned.
    const asked = await run(h, ["poweroff", "web", "--no-block"]);
    assert.deepEqual(asked, doc("poweroff", true, { running: true }));
    assert.deepEqual(await run(h, ["restart", "web"]), doc("restart", true, up));
    const off = { running: false };
    assert.deepEqual(await run(h, ["terminate", "web"]), doc("terminate", true, off));
    assert.deepEqual(await run(h, ["terminate", "web"]), doc("terminate", false, off));
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

  it("prune --dry-run lists exactly what prune --yes removes", async () => {
    await run(h, ["cutover-instance", "web", "foo-0.1"]);
    await run(h, ["cutover-instance", "web", "foo-0.2"]);
    await run(h, ["cutover-instance", "web", "foo-0.1"]);
    const verb = findVerb("prune");
    const dry = await captured(async () => {
      const { args, opts } = parseVerbArgs(verb, ["--keep", "0"]);
      await verb.run?.({ verb, args, opts, r: new FakeHost({ dryRun: true }) });
    });
    assert.equal(dry, "would remove:\n  instance web gen 1 (foo-0.1)\n  image broken\n");
    const real = await run(h, ["prune", "--keep", "0", "--yes"]);
    assert.deepEqual(real.removed, {
      instances: [{ machine: "web", gen: 1, image: "foo-0.1" }],
      images: ["broken"],
    });
    assert.equal(real.changed, true);
  });

  it("every verb that takes a machine's lock queues with --wait, the way its busy error names", async () => {
    const locking = VERBS.filter(
      (v) => v.mutates && v.args[0]?.name === "NAME" && v.name !== "shell",
    );
    for (const verb of locking)
      assert.ok("wait" in (verb.options ?? {}), `${verb.name} has no --wait`);
    await run(h, ["cutover-instance", "web", "foo-0.1"]);
    heldElsewhere(h, "web");
    // The verbs that had no --wait before, though their busy error named it.
    for (const name of [
      "disable",
      "enable",
      "poweroff",
      "restart",
      "set-services",
      "start",
      "terminate",
    ]) {
      writeFileSync(paths.lock("web"), "4242 cutover-instance\n");
      const busy = (await run(h, [name, "web"])).error as { message: string; hint: string };
      assert.equal(busy.message, "web is busy: cutover-instance by pid 4242", name);
      assert.match(busy.hint, /add --wait to queue behind it/, name);
      const queued = await run(h, [name, "web", "--wait"]);
      assert.equal(queued.error, null, `${name} --wait: ${JSON.stringify(queued.error)}`);
    }
  });

  it("prune removes the rest when another command holds a machine, and fails naming it, with --wait as the way", async () => {
    for (const [m, img] of [
      ["web", "foo-0.1"],
      ["web", "foo-0.2"],
      ["web", "foo-0.1"],
      ["api", "foo-0.1"],
      ["api", "foo-0.2"],
      ["api", "foo-0.1"],
    ] as const)
      await run(h, ["cutover-instance", m, img]);
    // web's lock is held by a cutover.
    writeFileSync(paths.lock("web"), "4242 cutover-instance\n");
    heldElsewhere(h, "web");
    const doc = await run(h, ["prune", "--keep", "0", "--yes"]);
    assert.equal(doc.changed, true);
    assert.deepEqual(doc.removed, {
      instances: [{ machine: "api", gen: 1, image: "foo-0.1" }],
      images: ["broken"],
    });
    assert.deepEqual(doc.failed, [
      { what: "web gen 1 (foo-0.1)", message: "web is busy: cutover-instance by pid 4242" },
    ]);
    const error = doc.error as { message: string; hint: string };
    assert.equal(
      error.message,
      "prune left 1 of 3 alone: web gen 1 (foo-0.1): web is busy: cutover-instance by pid 4242",
    );
    assert.match(error.hint, /add --wait to queue behind it/);
  });
});
