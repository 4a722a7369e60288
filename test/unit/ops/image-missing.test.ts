// An image deleted from the store by hand (rm -rf) under a machine that
// uses it: status names it, recover leaves it, and start and restart refuse
// before they stop or start anything. Against the fake host.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { beforeEach, describe, it } from "node:test";
import { paths } from "../../../src/base/paths.ts";
import { renderImages } from "../../../src/cli/render/images.ts";
import { renderHistory } from "../../../src/cli/render/instances.ts";
import { attention } from "../../../src/ops/drift.ts";
import { recoverCommand } from "../../../src/ops/guard.ts";
import { gatherHistory } from "../../../src/ops/history.ts";
import { gather } from "../../../src/ops/images.ts";
import { restart, start } from "../../../src/ops/lifecycle.ts";
import { gatherStatus } from "../../../src/ops/status.ts";
import { cutover, fallback } from "../../../src/ops/switch.ts";
import { FakeHost } from "../../lib/fake-host.ts";
import { fakeImage, tempRoot } from "../../lib/fake-store.ts";
import { machineState } from "../../lib/interrupt.ts";

const M = "web1";
const opts = { timeoutMs: 20_000 };
const gone = `${M}'s instance 2 is on image foo-0.2, which is gone from the store`;

/** A fake host where web1 runs on foo-0.2 with foo-0.1 to fall back to, and one of the two images deleted by hand. */
async function deleted(image: string): Promise<FakeHost> {
  tempRoot(["foo-0.1", "foo-0.2"]);
  const h = new FakeHost();
  await cutover(h, M, "foo-0.1", opts);
  await cutover(h, M, "foo-0.2", opts);
  rmSync(paths.image(image), { recursive: true });
  h.calls.length = 0;
  return h;
}

describe("an image deleted from the store under a machine", () => {
  let h: FakeHost;
  beforeEach(async () => {
    h = await deleted("foo-0.2");
  });

  it("status names it and the way out; recover leaves it", async () => {
    const a = attention(h, machineState(M));
    assert.equal(a?.reason, "image-missing");
    assert.match(a?.message ?? "", new RegExp(`^${gone} \\(no ${paths.imageRoot("foo-0.2")}\\)`));
    assert.equal(a?.settle, "boxctl stage-image FILE --name foo-0.2");
    assert.equal((await recoverCommand(h, M, {})).settled, null);
    assert.deepEqual(
      h.commands.filter((c) => /^systemctl (start|stop|restart) |^umount /.test(c)),
      [],
    );
  });

  it("start and restart refuse before they stop or start anything", async () => {
    for (const verb of [start, restart]) {
      await assert.rejects(
        async () => verb(h, M, opts),
        (e: Error & { hint?: string }) => {
          assert.match(e.message, new RegExp(`^${gone}`));
          assert.match(
            e.hint ?? "",
            /^stage it again under its name \(boxctl stage-image FILE --name foo-0\.2\), then go back to the fallback instance \(boxctl fallback-instance web1\) or cut over/,
          );
          return true;
        },
      );
    }
    assert.deepEqual(h.commands, []);
  });

  it("cutover and fallback refuse before they change anything", async () => {
    const refused = (msg: RegExp) => (e: Error & { hint?: string }) => {
      assert.match(e.message, msg);
      assert.match(e.hint ?? "", /boxctl stage-image FILE --name foo-0\.2\), then run this again$/);
      return true;
    };
    await assert.rejects(
      cutover(h, M, "foo-0.1", opts),
      refused(
        new RegExp(`^cannot cutover-instance: ${gone}.*goes back to it if the new one fails$`),
      ),
    );
    await assert.rejects(
      fallback(h, M, opts),
      refused(new RegExp(`^cannot fallback-instance: ${gone}.*with private users`)),
    );
    assert.deepEqual(
      h.commands.filter((c) => !c.startsWith("flock ")),
      [],
      "only the locks were taken",
    );
    assert.equal(machineState(M).current, 2);
    assert.deepEqual(
      machineState(M).instances.map((i) => i.gen),
      [1, 2],
      "no new instance was made",
    );
  });

  it("without private users, fallback leaves the instance whose image is gone", async () => {
    await cutover(h, "web2", "foo-0.1", { ...opts, privateUsers: false });
    fakeImage("foo-0.2");
    await cutover(h, "web2", "foo-0.2", opts);
    rmSync(paths.image("foo-0.2"), { recursive: true });
    assert.equal((await fallback(h, "web2", opts)).current?.gen, 1);
  });
});

describe("a fallback instance whose image was deleted from the store", () => {
  let h: FakeHost;
  beforeEach(async () => {
    h = await deleted("foo-0.1");
  });

  it("status says so, and fallback refuses before it stops anything", async () => {
    const s = await gatherStatus(h, M);
    assert.equal(s.fallbackImageMissing, true);
    const { doc } = await gatherHistory(h, M);
    assert.deepEqual(
      doc.instances.map((i) => [i.gen, i.imageMissing]),
      [
        [1, true],
        [2, false],
      ],
    );
    assert.match(renderHistory(doc, false), /^1 +foo-0\.1 .*fallback,image gone$/m);
    const listed = gather();
    assert.deepEqual(listed.machines, [
      {
        name: M,
        current: { gen: 2, image: "foo-0.2", imageMissing: false },
        fallback: { gen: 1, image: "foo-0.1", imageMissing: true },
      },
    ]);
    assert.match(
      renderImages(listed, false),
      /^web1 +foo-0\.2 \(gen 2\) +foo-0\.1 \(gen 1, image gone\)$/m,
    );
    assert.equal(s.attention, null, "what runs is as recorded");
    await assert.rejects(fallback(h, M, opts), (e: Error & { hint?: string }) => {
      assert.match(
        e.message,
        /^cannot fallback-instance: web1's instance 1 is on image foo-0\.1, which is gone from the store/,
      );
      assert.match(e.hint ?? "", /boxctl stage-image FILE --name foo-0\.1\)/);
      return true;
    });
    assert.deepEqual(
      h.commands.filter((c) => /^systemctl (start|stop|restart|daemon-reload)|^umount /.test(c)),
      [],
    );
    assert.equal(machineState(M).current, 2);
  });
});
