// Two machines in one uid range: boxctl never allocates that, but a store
// restored beside another host's machines can hold it, and so does a
// machinectl clone (it copies NAME.nspawn, PrivateUsers= included); then
// root in either container owns the other's files. status says so, and no
// new machine is given a range that any NAME.nspawn names. Fake host.
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeEach, describe, it } from "node:test";
import { paths } from "../../../src/base/paths.ts";
import { renderStatus } from "../../../src/cli/render/container.ts";
import { deleteMachine } from "../../../src/ops/delete-machine.ts";
import { poweroff } from "../../../src/ops/lifecycle.ts";
import { gatherStatus } from "../../../src/ops/status.ts";
import { cutover } from "../../../src/ops/switch.ts";
import { settingsUidRange } from "../../../src/overlay/units.ts";
import { claimBase, saveMachine } from "../../../src/store/machine.ts";
import { FakeHost } from "../../lib/fake-host.ts";
import { tempRoot } from "../../lib/fake-store.ts";
import { machineState } from "../../lib/interrupt.ts";

const opts = { timeoutMs: 20_000 };

describe("a uid range two machines share", () => {
  let h: FakeHost;
  beforeEach(async () => {
    tempRoot(["foo-0.1"]);
    h = new FakeHost();
    for (const n of ["web1", "web2", "db1"]) await cutover(h, n, "foo-0.1", opts);
  });

  it("is named on each machine's status, and on no other", async () => {
    const base = async (n: string) => (await gatherStatus(h, n)).privateUsers;
    const web1 = await base("web1");
    assert.deepEqual(web1?.sharedWith, []);
    assert.notEqual((await base("web2"))?.base, web1?.base);
    // As a web2 restored from another host's store, where it had web1's range.
    const m = machineState("web2");
    m.uidBase = web1?.base;
    for (const i of m.instances) i.uidBase = web1?.base ?? null;
    saveMachine(h, m);
    assert.deepEqual((await base("web1"))?.sharedWith, ["web2"]);
    assert.deepEqual((await base("web2"))?.sharedWith, ["web1"]);
    assert.deepEqual((await base("db1"))?.sharedWith, []);
    const text = renderStatus(await gatherStatus(h, "web1"), true);
    assert.ok(
      text.includes(
        "; web2 has the same range, so root in either container owns the other's files",
      ),
      text,
    );
  });

  it("is named for a machinectl clone, by its copied settings, wherever nspawn finds them", async () => {
    const base = (await gatherStatus(h, "web1")).privateUsers?.base;
    copyFileSync(paths.nspawnFile("web1"), join(paths.nspawnDir(), "c1.nspawn"));
    const beside = paths.shadowedNspawnFiles("c2")[1] as string;
    mkdirSync(paths.mountPoints(), { recursive: true });
    writeFileSync(beside, `[Exec]\nPrivateUsers=${(base ?? 0) + 100}:10\n`);
    assert.deepEqual((await gatherStatus(h, "web1")).privateUsers?.sharedWith, ["c1", "c2"]);
    assert.deepEqual((await gatherStatus(h, "web2")).privateUsers?.sharedWith, []);
  });

  it("is never given to a new machine while a NAME.nspawn names it", async () => {
    const bases = async () =>
      Promise.all(
        ["web1", "web2", "db1"].map(
          async (n) => (await gatherStatus(h, n)).privateUsers?.base ?? 0,
        ),
      );
    const next = Math.max(...(await bases())) + 0x10000;
    // A clone's settings, left after the machine it was cloned from was deleted.
    writeFileSync(join(paths.nspawnDir(), "c3.nspawn"), `[Exec]\nPrivateUsers=${next}:65536\n`);
    await cutover(h, "app1", "foo-0.1", opts);
    assert.equal((await gatherStatus(h, "app1")).privateUsers?.base, next + 0x10000);
  });
});

describe("the uid ranges of machines made at the same moment", () => {
  it("differ: each cutover claims its range before any has written its record", async () => {
    tempRoot(["foo-0.1"]);
    const h = new FakeHost();
    const names = ["n1", "n2", "n3"];
    await Promise.all(names.map((n) => cutover(h, n, "foo-0.1", opts)));
    const bases = await Promise.all(
      names.map(async (n) => (await gatherStatus(h, n)).privateUsers?.base),
    );
    assert.equal(new Set(bases).size, 3, String(bases));
    // The same machine made again (after its first cutover was refused, say) keeps its claim.
    assert.equal(claimBase(h, "n1", bases[0] ?? 0), true);
    assert.equal(claimBase(h, "n2", bases[0] ?? 0), false);
    // Deleted, the machine's range is free again for the next one.
    await poweroff(h, "n1", {});
    await deleteMachine(h, "n1", { yes: true });
    await cutover(h, "n4", "foo-0.1", opts);
    assert.equal((await gatherStatus(h, "n4")).privateUsers?.base, bases[0]);
  });
});

describe("the uid range in NAME.nspawn's text", () => {
  it("is PrivateUsers=BASE[:COUNT] in [Exec], the last one counting", () => {
    assert.deepEqual(settingsUidRange("[Exec]\nPrivateUsers=1879048192:65536\n"), {
      base: 1879048192,
      size: 65536,
    });
    assert.deepEqual(settingsUidRange("[Exec]\nPrivateUsers = 1879048192\n"), {
      base: 1879048192,
      size: 65536,
    });
    assert.equal(
      settingsUidRange("[Exec]\nPrivateUsers=1879048192:65536\nPrivateUsers=pick\n"),
      null,
    );
    assert.equal(settingsUidRange("[Files]\nPrivateUsers=1879048192:65536\n"), null);
    for (const v of ["no", "yes", "identity", "managed", ""])
      assert.equal(settingsUidRange(`[Exec]\nPrivateUsers=${v}\n`), null, v);
  });
});
