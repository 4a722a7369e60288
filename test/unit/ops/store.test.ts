// prune, pin and df against a fake host.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { beforeEach, describe, it } from "node:test";
import { paths } from "../../../src/base/paths.ts";
import { deletePlan } from "../../../src/ops/delete-instance.ts";
import { df } from "../../../src/ops/df.ts";
import { applyKeep, setKeep } from "../../../src/ops/keep.ts";
import { pinImage, pinInstance } from "../../../src/ops/pin.ts";
import { applyPrune, loadStore, prunePlan, settleInterrupted } from "../../../src/ops/prune.ts";
import { cutover } from "../../../src/ops/switch.ts";
import { newIntent, readIntent } from "../../../src/plan/intent.ts";
import { loadImage } from "../../../src/store/images.ts";
import { instanceOf, loadMachine } from "../../../src/store/machine.ts";
import { FakeHost, tempRoot } from "../../lib/fake-host.ts";
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
    assert.equal(await setKeep(h, M, "0"), 0);
    assert.equal(loadMachine(M)?.keep, 0);
    const res = await applyKeep(h, M);
    assert.deepEqual(res?.removed, {
      instances: [{ machine: M, gen: 1, image: "foo-0.1" }],
      images: [],
    });
    assert.ok(existsSync(paths.image("foo-0.1")), "images are prune's business");
    assert.equal(await setKeep(h, M, "off"), null);
    assert.equal(loadMachine(M)?.keep, undefined);
    await assert.rejects(setKeep(h, M, "-1"), /a number or off/);
  });
});

describe("df", () => {
  it("adds up to du of the store, and counts a hard-linked inode once", async () => {
    tempRoot(["a", "b", "c"]);
    const h = new FakeHost();
    await cutover(h, M, "a", opts);
    await cutover(h, M, "b", opts);
    await cutover(h, M, "a", opts);
    // Gens 1 (a), 2 (b, fallback), 3 (a, current); c unused.
    h.duBytes.set(paths.image("a"), 1000);
    h.duBytes.set(paths.image("b"), 2000);
    h.duBytes.set(paths.image("c"), 300);
    // 500 bytes of files hard-linked between b and c.
    h.duLinked.push({ paths: [paths.image("b"), paths.image("c")], bytes: 500 });
    for (const g of [1, 2, 3]) {
      h.duBytes.set(paths.upper(M, g), 10 * g);
      h.duBytes.set(paths.work(M, g), 1);
    }
    h.duBytes.set(paths.machineState(M), 7);
    const d = await df(h);
    assert.equal(d.store.bytes, 1000 + 2000 + 300 + 500 + 60 + 3 + 7);
    assert.equal(d.imagesBytes + d.instancesBytes + d.otherBytes, d.store.bytes);
    assert.equal(d.imagesBytes, 3800);
    assert.equal(d.otherBytes, 7);
    const img = Object.fromEntries(d.images.map((i) => [i.name, [i.bytes, i.onlyBytes]]));
    assert.deepEqual(img, { a: [1000, 1000], b: [2500, 2000], c: [800, 300] });
    const insts = d.machines[0]?.instances.map((i) => [i.gen, i.bytes, i.changesBytes]);
    assert.deepEqual(insts, [
      [1, 11, 10],
      [2, 21, 20],
      [3, 31, 30],
    ]);
    // prune: gen 1 (11 bytes) and image c (300: its shared 500 stay with b).
    assert.deepEqual(d.prune.images, ["c"]);
    assert.deepEqual(
      d.prune.instances.map((i) => i.gen),
      [1],
    );
    assert.equal(d.prune.bytes, 11 + 300);
  });
});
