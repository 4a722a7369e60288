// prune's dry run against its real run, and --wait: every verb that takes a
// machine's lock queues behind another command, and prune goes on past a busy
// machine and names it (--json, against the fake host).
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { beforeEach, describe, it } from "node:test";
import { paths } from "../../src/base/paths.ts";
import { parseVerbArgs } from "../../src/cli/parse.ts";
import { findVerb, VERBS } from "../../src/cli/table.ts";
import { FakeHost } from "../lib/fake-host.ts";
import { tempRoot } from "../lib/fake-store.ts";
import { captured, heldElsewhere, run } from "../lib/json-run.ts";

describe("prune and --wait, with --json", () => {
  let h: FakeHost;
  beforeEach(() => {
    tempRoot(["foo-0.1", "foo-0.2", "broken"]);
    h = new FakeHost();
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
