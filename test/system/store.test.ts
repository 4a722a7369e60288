// The store over many upgrades: df adds up to du of the store, prune never
// removes the current, fallback or pinned instance nor an image in use or
// pinned, and --dry-run lists exactly what the real run removes.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { STABLE_SUITES, TestHost } from "../host/host.ts";
import { isActive, machineJson, ok, STORE, stage, upSince } from "./instances-helpers.ts";
import { backingUp } from "./store-backup.ts";
import { retiring } from "./store-retire.ts";
import { sharedFiles } from "./store-shared.ts";

const M = "s1";

/** An unused image of a few files, with the image.json stage-image writes (no need to boot it). */
async function tinyImage(host: TestHost, image: string): Promise<void> {
  const dir = `${STORE}/images/${image}`;
  await host.sh(["mkdir", "-p", `${dir}/rootfs/etc`]);
  await host.sh(["cp", "/etc/os-release", "/etc/passwd", `${dir}/rootfs/etc/`]);
  const meta = JSON.parse(await host.sh(["cat", `${STORE}/images/foo-0.1/image.json`]));
  await host.sh(["tee", `${dir}/image.json`], { input: JSON.stringify({ ...meta, name: image }) });
}

interface DfImageJson {
  name: string;
  bytes: number;
  onlyBytes: number;
}

/**
 * df's image numbers against du's, computed here: an image's bytes are du
 * of it alone, the bytes only it holds are du of all images less du of the
 * others (an inode with a link in another image is not only its), and the
 * images together are du of all of them, each shared inode counted once.
 */
async function sharedAddsUp(
  host: TestHost,
  d: { imagesBytes: number; images: DfImageJson[] },
): Promise<void> {
  const du = async (names: string[]) => {
    if (!names.length) return 0;
    const dirs = names.map((n) => `${STORE}/images/${n}`);
    const out = await host.sh(["du", "-s", "-c", "-B1", "-x", ...dirs]);
    return Number(out.trim().split("\n").pop()?.split(/\s/)[0]);
  };
  const names = d.images.map((i) => i.name);
  const all = await du(names);
  assert.equal(d.imagesBytes, all);
  for (const i of d.images) {
    assert.equal(i.bytes, await du([i.name]), i.name);
    assert.equal(i.onlyBytes, all - (await du(names.filter((n) => n !== i.name))), i.name);
  }
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  assert.ok(sum(d.images.map((i) => i.onlyBytes)) <= all);
  assert.ok(sum(d.images.map((i) => i.bytes)) >= all);
}

for (const suite of STABLE_SUITES) {
  describe(`df and prune on ${suite}`, () => {
    let host: TestHost;
    const json = async (argv: string[]) => JSON.parse(ok(await host.boxctl(argv)).stdout);
    const images = async () => (await host.sh(["ls", `${STORE}/images`])).trim().split("\n");

    before(async () => {
      host = await TestHost.boot(suite);
      // A tmpfs of 3 GB of its own: staging the five versions below (some
      // 25,000 links) costs little there, and the full-store test fills it
      // with fallocate, which a bigger one would make slow.
      await host.sh(["mkdir", "-p", STORE]);
      await host.sh(["mount", "-t", "tmpfs", "-o", "size=3g,mode=0755", "tmpfs", STORE]);
      await stage(host, "foo-0.1");
      await stage(host, "foo-0.2");
      // Two small unused images: "spare" pinned, "old" not.
      for (const im of ["spare", "old"]) await tinyImage(host, im);
      // Gens 1 (0.1), 2 (0.2), 3 (0.1, fallback), 4 (0.2, current).
      for (const im of ["foo-0.1", "foo-0.2", "foo-0.1", "foo-0.2"])
        ok(await host.boxctl(["cutover-instance", M, im]), `cutover to ${im}`);
      ok(await host.boxctl(["pin", M, "--instance", "1"]));
      ok(await host.boxctl(["pin", "spare"]));
    });
    after(() => host?.destroy());

    it("df adds up to du of the store", async () => {
      // Stopped, so that nothing writes to the store between df and du.
      ok(await host.exec(["systemctl", "stop", `systemd-nspawn@${M}.service`]));
      const d = await json(["df", "--json"]);
      const du = Number((await host.sh(["du", "-s", "-B1", "-x", STORE])).split(/\s/)[0]);
      assert.equal(d.store.bytes, du);
      assert.equal(d.imagesBytes + d.instancesBytes + d.otherBytes, du);
      await sharedAddsUp(host, d);
      // foo-0.2 is foo-0.1 but for a few files: most of it is shared.
      const foo2 = d.images.find((i: { name: string }) => i.name === "foo-0.2");
      assert.ok(foo2.onlyBytes < foo2.bytes / 4, JSON.stringify(foo2));
      assert.ok(d.otherBytes >= 0 && d.otherBytes < 1 << 20, String(d.otherBytes));
      assert.deepEqual(
        d.prune.instances.map((i: { gen: number }) => i.gen),
        [2],
      );
      assert.deepEqual(d.prune.images, ["old"]);
      const old = d.images.find((i: { name: string }) => i.name === "old");
      const gen2 = d.machines[0].instances.find((i: { gen: number }) => i.gen === 2);
      assert.equal(d.prune.bytes, old.bytes + gen2.bytes);
      ok(await host.exec(["systemctl", "start", `systemd-nspawn@${M}.service`]));
    });

    it("prune needs --yes without a terminal, and then removes nothing", async () => {
      const r = await host.boxctl(["prune"]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /--yes/);
      assert.deepEqual(
        (await machineJson(host, M)).instances.map((i) => i.gen),
        [1, 2, 3, 4],
      );
    });

    it("--dry-run lists exactly what prune removes, never current, fallback, pinned or in use", async () => {
      const dry = ok(await host.boxctl(["prune", "--dry-run"])).stdout;
      assert.equal(dry, `would remove:\n  instance ${M} gen 2 (foo-0.2)\n  image old\n`);
      const staged = await images();
      const real = ok(await host.boxctl(["prune", "--yes"])).stdout;
      assert.equal(real, `removed instance ${M} gen 2 (foo-0.2)\nremoved image old\n`);
      assert.match(ok(await host.boxctl(["prune", "--yes", "--json"])).stdout, /"changed": false/);
      const m = await machineJson(host, M);
      assert.deepEqual([m.current, m.fallback], [4, 3]);
      assert.deepEqual(
        m.instances.map((i) => i.gen),
        [1, 3, 4],
      );
      assert.equal((await host.exec(["test", "-e", `${STORE}/machines/${M}/instances/2`])).code, 1);
      const left = await images();
      assert.deepEqual(
        staged.filter((i) => !left.includes(i)),
        ["old"],
      );
      assert.ok(await isActive(host, M), "the current instance still runs");
    });

    it("a machine's keep setting prunes its instances after a successful cutover", async () => {
      assert.equal((await json(["status", M, "--json"])).keep, null, "off until set");
      ok(await host.boxctl(["set-keep", M, "0"]));
      assert.equal((await json(["status", M, "--json"])).keep, 0);
      assert.match(ok(await host.boxctl(["status", M])).stdout, /Keep: +after each cutover, every/);
      const r = ok(await host.boxctl(["cutover-instance", M, "foo-0.1"]));
      assert.match(r.stderr, new RegExp(`${M}: keep 0: removed instance ${M} gen 3 \\(foo-0.1\\)`));
      const m = await machineJson(host, M);
      assert.deepEqual([m.current, m.fallback], [5, 4]);
      assert.deepEqual(
        m.instances.map((i) => i.gen),
        [1, 4, 5],
      );
    });

    it("a prune killed half-way leaves a consistent store, and the next prune finishes it", async () => {
      ok(await host.boxctl(["unpin", M, "--instance", "1"]));
      await tinyImage(host, "old2");
      const intent = `${STORE}/machines/${M}/intent.json`;
      // Killed (the documented test hook) right after its first deletion forgot gen 1.
      const r = await host.boxctl(["prune", "--yes"], { env: { BOXCTL_CRASH_AFTER: "forget" } });
      assert.equal(r.code, 137, r.stderr);
      assert.equal((await host.exec(["test", "-e", intent])).code, 0);
      assert.equal((await host.exec(["test", "-d", `${STORE}/machines/${M}/instances/1`])).code, 0);
      // Every instance and image is whole or gone; a dry run names what is left and the repair.
      const dry = ok(await host.boxctl(["prune", "--dry-run"])).stdout;
      assert.match(
        dry,
        new RegExp(
          `^# ${M}: would first complete or roll back the interrupted delete-instance \\(pid \\d+\\)\nwould remove:\n  image old2\n$`,
        ),
      );
      const real = ok(await host.boxctl(["prune", "--yes"]));
      assert.equal(real.stdout, "removed image old2\n");
      assert.equal(
        (await host.exec(["test", "-e", intent])).code,
        1,
        "the interrupted deletion is settled",
      );
      assert.equal((await host.exec(["test", "-e", `${STORE}/machines/${M}/instances/1`])).code, 1);
      assert.deepEqual(
        (await machineJson(host, M)).instances.map((i) => i.gen),
        [4, 5],
      );
      assert.ok(!(await images()).includes("old2"));
      assert.ok(await isActive(host, M), "the current instance still runs");
      ok(await host.exec(["systemctl", "stop", `systemd-nspawn@${M}.service`]));
      const d = await json(["df", "--json"]);
      const du = Number((await host.sh(["du", "-s", "-B1", "-x", STORE])).split(/\s/)[0]);
      assert.equal(d.imagesBytes + d.instancesBytes + d.otherBytes, du, "df still adds up");
      ok(await host.exec(["systemctl", "start", `systemd-nspawn@${M}.service`]));
    });

    it("a full store: a cutover that cannot begin changes nothing, one that runs out mid-way goes back, and each says what frees space", async () => {
      const before = await machineJson(host, M);
      const since = await upSince(host, M);
      // Leaves `free` bytes on the store's tmpfs.
      const fill = (free: number) =>
        host.sh([
          "sh",
          "-c",
          `rm -f ${STORE}/filler; fallocate -l $(( $(df -B1 --output=avail ${STORE} | tail -1) - ${free} )) ${STORE}/filler`,
        ]);
      assert.equal(await host.sh(["stat", "-c", "%s", `${STORE}/.reserve`]), "262144\n");
      try {
        await fill(0);
        const none = await host.boxctl(["cutover-instance", M, "foo-0.1"]);
        assert.equal(none.code, 1);
        assert.match(
          none.stderr,
          /failed before any change: no space left on the file system of \/var\/lib\/boxctl\/machines\/s1/,
        );
        assert.match(none.stderr, /hint: free space in boxctl's store \(boxctl df .*boxctl prune/);
        assert.deepEqual(await machineJson(host, M), before, "the record is as it was");
        assert.equal(
          (
            await host.exec(["sh", "-c", `ls -A ${STORE}/machines/${M} | grep -c tmp`])
          ).stdout.trim(),
          "0",
          "no temp file is left",
        );
        assert.equal(await upSince(host, M), since, "the container was not touched");
        // Room for the record, not for the /etc that --carry etc copies in.
        await fill(16384);
        const mid = await host.boxctl([
          "cutover-instance",
          M,
          "foo-0.1",
          "--carry",
          "identity,etc",
        ]);
        assert.equal(mid.code, 1);
        assert.match(mid.stderr, /No space left on device/);
        assert.match(mid.stderr, /hint: the store's file system is full/);
        assert.match(mid.stderr, new RegExp(`${M} is running on instance ${before.current} \\(`));
        assert.equal((await machineJson(host, M)).current, before.current);
        assert.ok(await isActive(host, M));
        // Full again: deleting what that cutover left (kept for inspection) still works, in
        // the room the store's reserve gives back.
        await fill(0);
        const left = (await machineJson(host, M)).instances.filter(
          (i) => !before.instances.some((b) => b.gen === i.gen),
        );
        assert.equal(left.length, 1);
        for (const i of left)
          ok(
            await host.boxctl(["delete-instance", M, i.image, "--instance", String(i.gen)]),
            "delete-instance on a full store",
          );
        const after = await machineJson(host, M);
        assert.deepEqual(
          [after.current, after.fallback, after.instances],
          [before.current, before.fallback, before.instances],
        );
      } finally {
        await host.sh(["rm", "-f", `${STORE}/filler`]);
      }
      // The next command on a machine makes the reserve again, now that there is room.
      ok(await host.boxctl(["recover", M]));
      assert.equal(await host.sh(["stat", "-c", "%s", `${STORE}/.reserve`]), "262144\n");
    });

    retiring(() => host, M);

    // Five 160 MB versions cost some 30 s per suite; sharing is the kernel's
    // and GNU tar's, the same under both suites: one suite runs them (foo-0.2
    // shares foo-0.1's files on both, so df's checks above see sharing on
    // each). Debian 12 has the older node (18), tar and getfattr.
    if (suite !== "bookworm") return;

    sharedFiles(() => host, "sv");

    it("df adds up with five versions sharing their files", async () => {
      for (const m of [M, "sv"])
        ok(await host.exec(["systemctl", "stop", `systemd-nspawn@${m}.service`]));
      const d = await json(["df", "--json"]);
      const du = Number((await host.sh(["du", "-s", "-B1", "-x", STORE])).split(/\s/)[0]);
      assert.equal(d.store.bytes, du);
      await sharedAddsUp(host, d);
    });

    backingUp(() => host, M);
  });
}
