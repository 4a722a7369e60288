// --json of the mutating verbs a script calls: one document on stdout, for
// a success and for a failure, run against the fake host (docs/json.md).
import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { BoxError } from "../../src/base/errors.ts";
import { paths } from "../../src/base/paths.ts";
import { failedJson } from "../../src/cli/output.ts";
import { parseVerbArgs } from "../../src/cli/parse.ts";
import { findVerb, VERBS } from "../../src/cli/table.ts";
import { FakeHost, tempRoot } from "../lib/fake-host.ts";

/** Runs a verb as main.ts would, and returns what it printed on stdout. */
async function captured(fn: () => Promise<unknown>): Promise<string> {
  const out: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((s: string) => out.push(s) > 0) as typeof process.stdout.write;
  try {
    await fn();
  } finally {
    process.stdout.write = write;
  }
  return out.join("");
}

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
      "fallback-instance",
      "pin",
      "prune",
      "reset",
      "stage-image",
      "unpin",
    ]);
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
});
