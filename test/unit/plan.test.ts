// apply(): how a mutating operation answers Ctrl-C, SIGTERM and a hang-up.
// Signals are delivered with process.emit, which runs the same listeners
// a real signal would, without killing the test runner.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { BoxError } from "../../src/base/errors.ts";
import { paths } from "../../src/base/paths.ts";
import { apply, type OnStop } from "../../src/plan/apply.ts";
import { newIntent } from "../../src/plan/intent.ts";
import { FakeHost } from "../lib/fake-host.ts";
import { tempRoot } from "../lib/fake-store.ts";

tempRoot([]);
const host = new FakeHost();

const machine = { current: 1, fallback: null };

/** Three steps; the second delivers sig while it runs. */
function steps(sig: NodeJS.Signals | null, ran: string[]) {
  return ["one", "two", "three"].map((name) => ({
    name,
    what: name,
    run: async () => {
      ran.push(name);
      if (name === "two" && sig) process.emit(sig as "SIGTERM", sig);
    },
  }));
}

const intent = () => newIntent("cutover-instance", machine, { gen: 2, image: "foo-0.2" }, true);
const stepOnDisk = () => JSON.parse(readFileSync(paths.intent("m1"), "utf8")).step;
const plan = (sig: NodeJS.Signals | null, ran: string[], onStop: OnStop = "roll-back") => ({
  machine: "m1",
  intent: intent(),
  steps: steps(sig, ran),
  onStop,
});

describe("apply and signals", () => {
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    it(`${sig}: ends the step in progress, then fails with exit code 130 (roll-back)`, async () => {
      const ran: string[] = [];
      await assert.rejects(apply(host, plan(sig, ran)), (e: unknown) => {
        assert.ok(e instanceof BoxError);
        assert.equal(e.exitCode, 130);
        assert.match(e.message, /^interrupted by (the user|SIGTERM) before step 'three'$/);
        return true;
      });
      assert.deepEqual(ran, ["one", "two"]);
      assert.equal(stepOnDisk(), "two", "the step that ran is recorded");
      assert.equal(process.listenerCount(sig), 0, "the handler is gone afterwards");
    });
  }

  it("runs a reset or delete to its end on SIGTERM (finish)", async () => {
    const ran: string[] = [];
    await apply(host, plan("SIGTERM", ran, "finish"));
    assert.deepEqual(ran, ["one", "two", "three"]);
  });

  it("a second signal exits at once with 130", async () => {
    const exit = process.exit;
    let code: number | undefined;
    process.exit = ((c?: number) => {
      code = c;
      throw new Error("exited");
    }) as typeof process.exit;
    try {
      const twice = steps(null, []);
      twice[1] = {
        ...twice[1],
        run: async () => {
          process.emit("SIGINT", "SIGINT");
          process.emit("SIGINT", "SIGINT");
        },
      } as (typeof twice)[1];
      await assert.rejects(apply(host, { ...plan(null, []), steps: twice }), /exited/);
      assert.equal(code, 130);
    } finally {
      process.exit = exit;
    }
  });

  it("carries on after a hang-up: the operation is not cut short", async () => {
    const ran: string[] = [];
    await apply(host, plan("SIGHUP", ran));
    assert.deepEqual(ran, ["one", "two", "three"]);
    assert.ok(process.stderr.listenerCount("error") > 0, "output errors no longer kill boxctl");
  });
});
