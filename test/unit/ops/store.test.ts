// prune, pin and df against a fake host.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, linkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeEach, describe, it } from "node:test";
import type { BoxError } from "../../../src/base/errors.ts";
import { paths } from "../../../src/base/paths.ts";
import { setServices } from "../../../src/ops/app-status.ts";
import { setCarry } from "../../../src/ops/carry-policy.ts";
import { deletePlan } from "../../../src/ops/delete-instance.ts";
import { df } from "../../../src/ops/df.ts";
import { applyKeep, setKeep } from "../../../src/ops/keep.ts";
import { pinImage, pinInstance } from "../../../src/ops/pin.ts";
import {
  applyPrune,
  loadStore,
  parseKeep,
  prunePlan,
  settleInterrupted,
} from "../../../src/ops/prune.ts";
import { cutover } from "../../../src/ops/switch.ts";
import { newIntent, readIntent } from "../../../src/plan/intent.ts";
import { loadImage } from "../../../src/store/images.ts";
import { instanceOf, loadMachine } from "../../../src/store/machine.ts";
import { FakeHost } from "../../lib/fake-host.ts";
import { tempRoot } from "../../lib/fake-store.ts";
import { interruptAfter, machineState } from "../../lib/interrupt.ts";

const M = "app1";
const opts = { timeoutMs: 15_000 };
const IMAGES = ["foo-0.1", "foo-0.2", "foo-0.3", "foo-0.4", "foo-0.5", "foo-0.6"];

describe("prune and pin", () => {
  let h: FakeHost;
  beforeEach(async () => {
    tempRoot(IMAGES);
    h = new FakeHost();
    // Gens 1..5 on foo-0.1..0.5: current 5, fallback 4; foo-0.6 unused.
    for (const im of IMAGES.slice(0, 5)) await cutover(h, M, im, opts);
  });

  it("the plan never holds the current, fallback or a pinned instance, nor an image in use or pinned", async () => {
    await pinInstance(h, M, 2, true);
    await pinImage(h, "foo-0.6", true);
    const plan = prunePlan(loadStore().machines, loadStore().images, 0);
    assert.deepEqual(
      plan.instances.map((i) => i.gen),
      [3, 1],
    );
    assert.deepEqual(plan.images, ["foo-0.1", "foo-0.3"]);
    const keep1 = prunePlan(loadStore().machines, loadStore().images, 1);
    assert.deepEqual(
      keep1.instances.map((i) => i.gen),
      [1],
      "--keep 1 keeps gen 3, the newest besides current and fallback",
    );
  });

  it("pin NAME without --instance, NAME a machine: says to add --instance, and pins nothing", async () => {
    await assert.rejects(pinImage(h, M, true), (e: BoxError) => {
      assert.equal(
        e.message,
        `${M} is a machine, not an image; to pin one of its instances, add --instance GEN`,
      );
      assert.match(
        e.hint ?? "",
        new RegExp(`boxctl pin ${M} --instance 5 \\(its instances: 1, 2, 3, 4, 5;`),
      );
      return true;
    });
    assert.ok(loadMachine(M)?.instances.every((i) => !i.pinned));
    await assert.rejects(pinImage(h, "nope", true), /image 'nope' is not staged/);
  });

  it("a real run removes exactly what the plan lists, and nothing else", async () => {
    await pinInstance(h, M, 2, true);
    const { machines, images } = loadStore();
    const plan = prunePlan(machines, images, 0);
    const res = await applyPrune(h, plan);
    assert.deepEqual(res.failed, []);
    assert.deepEqual(res.removed, { instances: plan.instances, images: plan.images });
    const m = loadMachine(M);
    assert.deepEqual(m?.instances.map((i) => i.gen).sort(), [2, 4, 5]);
    assert.deepEqual([m?.current, m?.fallback], [5, 4]);
    for (const im of IMAGES)
      assert.equal(existsSync(paths.image(im)), !plan.images.includes(im), im);
    for (const g of [1, 3]) assert.equal(existsSync(paths.instance(M, g)), false);
    // A second prune has nothing left to do.
    const again = prunePlan(loadStore().machines, loadStore().images, 0);
    assert.deepEqual([again.instances, again.images], [[], []]);
  });

  it("a prune killed after an instance's 'forget' is finished by the next prune", async () => {
    // What prune's first deletion leaves when killed there: gen 1 gone from
    // the record (so no plan names it again), its directory still on disk.
    const m = machineState(M);
    const inst = instanceOf(m, 1);
    assert.ok(inst);
    await interruptAfter(
      h,
      M,
      deletePlan(m, newIntent("delete-instance", m, inst, false), inst),
      "forget",
    );
    assert.ok(existsSync(paths.instance(M, 1)));
    await settleInterrupted(h);
    assert.equal(readIntent(M), null);
    assert.equal(existsSync(paths.instance(M, 1)), false, "the cut-off deletion is finished");
    const again = prunePlan(loadStore().machines, loadStore().images, 0);
    assert.deepEqual(
      again.instances.map((i) => i.gen),
      [3, 2],
    );
  });

  it("what changed since the plan is left alone and reported", async () => {
    const plan = prunePlan(loadStore().machines, loadStore().images, 0);
    await pinImage(h, "foo-0.6", true);
    const res = await applyPrune(h, plan);
    assert.ok(existsSync(paths.image("foo-0.6")));
    assert.deepEqual(
      res.failed.map((f) => f.what),
      ["image foo-0.6"],
    );
  });

  it("pin and unpin are stored as optional fields, and say when they change nothing", async () => {
    assert.equal(await pinImage(h, "foo-0.1", true), true);
    assert.equal(await pinImage(h, "foo-0.1", true), false);
    assert.equal(loadImage("foo-0.1")?.pinned, true);
    assert.equal(await pinImage(h, "foo-0.1", false), true);
    assert.equal(loadImage("foo-0.1")?.pinned, undefined);
    assert.equal((await pinInstance(h, M, 3, true)).changed, true);
    assert.equal(loadMachine(M)?.instances.find((i) => i.gen === 3)?.pinned, true);
    await assert.rejects(pinInstance(h, M, 9, true), /no instance gen 9/);
  });
});

describe("keep", () => {
  it("is off by default, and once set deletes only that machine's old instances, never an image", async () => {
    tempRoot(["foo-0.1", "foo-0.2", "foo-0.3"]);
    const h = new FakeHost();
    for (const im of ["foo-0.1", "foo-0.2", "foo-0.3"]) await cutover(h, M, im, opts);
    assert.equal(await applyKeep(h, M), null);
    assert.deepEqual(await setKeep(h, M, "0"), { keep: 0, changed: true });
    assert.equal(loadMachine(M)?.keep, 0);
    const res = await applyKeep(h, M);
    assert.deepEqual(res?.removed, {
      instances: [{ machine: M, gen: 1, image: "foo-0.1" }],
      images: [],
    });
    assert.ok(existsSync(paths.image("foo-0.1")), "images are prune's business");
    assert.deepEqual(await setKeep(h, M, "off"), { keep: null, changed: true });
    assert.equal(loadMachine(M)?.keep, undefined);
    await assert.rejects(setKeep(h, M, "-1"), /a number or off/);
  });

  it("calls a bad N, --keep, carry SPEC or unit name a usage error, before it looks for the machine", async () => {
    tempRoot([]);
    const usage = (re: RegExp) => (e: BoxError) => re.test(e.message) && e.exitCode === 2;
    await assert.rejects(
      setKeep(new FakeHost(), "nosuch", "x"),
      usage(/set-keep wants a number or off/),
    );
    await assert.rejects(
      async () => setCarry(new FakeHost(), "nosuch", "bogus"),
      usage(/unknown carry part/),
    );
    assert.throws(() => parseKeep("x"), usage(/--keep wants a number/));
    await assert.rejects(
      async () => setServices(new FakeHost(), "nosuch", ["a b"]),
      usage(/'a b' is not a unit name/),
    );
  });
});

describe("df", () => {
  /** GNU du itself, the oracle: -s -c -B1 -x over dirs, the total. */
  const du = (...dirs: string[]) =>
    Number(
      execFileSync("du", ["-s", "-c", "-B1", "-x", ...dirs], { encoding: "utf8" })
        .trim()
        .split("\n")
        .pop()
        ?.split("\t")[0],
    );

  it("adds up to du of the store in one walk, and counts an inode shared by images once", async () => {
    tempRoot(["a", "b", "c"]);
    const h = new FakeHost();
    await cutover(h, M, "a", opts);
    await cutover(h, M, "b", opts);
    await cutover(h, M, "a", opts);
    // Gens 1 (a), 2 (b, fallback), 3 (a, current); c unused.
    const put = (path: string, bytes: number) => writeFileSync(path, Buffer.alloc(bytes, 1));
    put(join(paths.imageRoot("a"), "x"), 10_000);
    put(join(paths.imageRoot("a"), "y"), 5_000);
    // Two names of one file within a: its own hard links, still only a's.
    linkSync(join(paths.imageRoot("a"), "y"), join(paths.imageRoot("a"), "y2"));
    put(join(paths.imageRoot("b"), "big"), 40_000);
    put(join(paths.imageRoot("b"), "shared"), 20_000);
    put(join(paths.imageRoot("c"), "own"), 3_000);
    // A file stored once for b and c.
    linkSync(join(paths.imageRoot("b"), "shared"), join(paths.imageRoot("c"), "shared"));
    for (const g of [1, 2, 3]) put(join(paths.upper(M, g), "changed"), 4096 * g);
    const d = df();
    const images = ["a", "b", "c"].map((n) => paths.image(n));
    assert.equal(d.store.bytes, du(paths.store()));
    assert.equal(d.imagesBytes, du(...images));
    assert.equal(d.imagesBytes + d.instancesBytes + d.otherBytes, d.store.bytes);
    for (const [k, i] of d.images.entries()) {
      assert.equal(i.bytes, du(images[k] as string), i.name);
      const others = images.filter((_, j) => j !== k);
      assert.equal(i.onlyBytes, d.imagesBytes - du(...others), i.name);
    }
    const b = d.images.find((i) => i.name === "b");
    assert.ok(b && b.onlyBytes < b.bytes, "b shares a file with c");
    for (const i of d.machines[0]?.instances ?? []) {
      assert.equal(i.bytes, du(paths.instance(M, i.gen)), `gen ${i.gen}`);
      assert.equal(i.changesBytes, du(paths.upper(M, i.gen)), `gen ${i.gen}`);
    }
    // prune: gen 1 and image c (its own file; the shared one stays with b).
    assert.deepEqual(d.prune.images, ["c"]);
    assert.deepEqual(
      d.prune.instances.map((i) => i.gen),
      [1],
    );
    const cOnly = d.imagesBytes - du(paths.image("a"), paths.image("b"));
    assert.equal(d.prune.bytes, du(paths.instance(M, 1)) + cOnly);
  });
});
