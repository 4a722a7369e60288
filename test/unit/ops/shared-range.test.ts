// Two machines in one uid range: boxctl never allocates that, but a store
// restored beside another host's machines can hold it, and then root in
// either container owns the other's files. status says so. Fake host.
import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { renderStatus } from "../../../src/cli/render/container.ts";
import { gatherStatus } from "../../../src/ops/status.ts";
import { cutover } from "../../../src/ops/switch.ts";
import { saveMachine } from "../../../src/store/machine.ts";
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
});
