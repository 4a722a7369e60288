// list-images and delete-image, last in images.test.ts: they read and delete
// the images the earlier tests staged. A module, not a *.test.ts file, so
// that it runs on images.test.ts's test hosts rather than booting more.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import type { TestHost } from "../host/host.ts";
import { type ImagesCtx, STORE } from "./images-helpers.ts";

export function listAndDelete(ctx: ImagesCtx): void {
  const { sh, meta, listing } = ctx;
  // The test file boots the host in a before() that runs ahead of this one.
  let host: TestHost;
  before(() => {
    host = ctx.host;
  });

  describe("list-images and delete-image", () => {
    before(async () => {
      await host.sh(["mkdir", "-p", `${STORE}/machines/system1`]);
      const now = new Date().toISOString();
      const machine = {
        version: 1,
        name: "system1",
        current: 2,
        fallback: 1,
        instances: [
          { gen: 1, image: "foo-0.1", created: now, lastActive: now },
          { gen: 2, image: "foo-0.2", created: now, lastActive: now },
        ],
        lastOperation: null,
      };
      writeFileSync(
        join(host.dir, STORE, "machines/system1/machine.json"),
        JSON.stringify(machine),
      );
    });

    it("lists images with OS, size, sha256 and users, and each machine's instances", async () => {
      const r = await host.boxctl(["list-images"]);
      assert.equal(r.code, 0, r.stderr);
      const sha = (await meta("foo-0.1")).sha256 as string;
      assert.match(r.stdout, /^IMAGE\s+OS\s+SIZE\s+STAGED\s+SHA256\s+USED BY$/m);
      assert.match(
        r.stdout,
        new RegExp(
          `^foo-0\\.1\\s+Debian GNU/Linux 12 \\(bookworm\\)\\s+\\d+M\\s+\\S+ ago\\s+${sha.slice(0, 12)}\\s+system1$`,
          "m",
        ),
      );
      assert.match(r.stdout, /^noos\s+-\s+/m);
      assert.match(r.stdout, /^system1\s+foo-0\.2 \(gen 2\)\s+foo-0\.1 \(gen 1\)$/m);
      const bare = await host.boxctl(["list-images", "--no-legend"]);
      assert.doesNotMatch(bare.stdout, /IMAGE|staged\./);
      const j = JSON.parse((await host.boxctl(["list-images", "--json"])).stdout);
      assert.equal(j.version, 1);
      const foo = j.images.find((i: { name: string }) => i.name === "foo-0.1");
      assert.equal(foo.sha256, sha);
      assert.deepEqual(foo.usedBy, [{ machine: "system1", gen: 1, role: "fallback" }]);
      assert.deepEqual(j.machines, [
        {
          name: "system1",
          current: { gen: 2, image: "foo-0.2", imageMissing: false },
          fallback: { gen: 1, image: "foo-0.1", imageMissing: false },
        },
      ]);
    });

    it("refuses to delete an image an instance uses, naming it", async () => {
      const store = await listing();
      const r = await host.boxctl(["delete-image", "foo-0.1"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /image 'foo-0\.1' is in use by system1 \(gen 1, fallback\)/);
      assert.match(
        r.stderr,
        /hint: delete that instance: boxctl delete-instance system1 foo-0\.1 --instance 1$/m,
      );
      assert.equal(await listing(), store);
    });

    it("deletes an unused image whole", async () => {
      const r = await host.boxctl(["delete-image", "from-stdin"]);
      assert.equal(r.code, 0, r.stderr);
      assert.notEqual((await host.exec(["test", "-e", `${STORE}/images/from-stdin`])).code, 0);
      assert.equal((await sh(`ls -A ${STORE}/staging`)).trim(), "");
      const again = await host.boxctl(["delete-image", "from-stdin"]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /image 'from-stdin' is not staged/);
    });
  });
}
