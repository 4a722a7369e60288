// apply(): how a mutating operation answers Ctrl-C, SIGTERM and a hang-up.
// Signals are delivered with process.emit, which runs the same listeners
// a real signal would, without killing the test runner.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";

const store = mkdtempSync(join(tmpdir(), "boxctl-plan-"));
process.env.BOXCTL_STORE = store;
mkdirSync(join(store, "machines/m1"), { recursive: true });
// After BOXCTL_STORE is set: paths.ts reads it once, at import.
const { apply } = await import("../../src/instances/plan.ts");
const { BoxError } = await import("../../src/errors.ts");
const { newIntent } = await import("../../src/instances/journal.ts");

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
const stepOnDisk = () =>
  JSON.parse(readFileSync(join(store, "machines/m1/intent.json"), "utf8")).step;

describe("apply and signals", () => {
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    it(`${sig}: ends the step in progress, then fails with exit code 130 (roll-back)`, async () => {
      const ran: string[] = [];
      await assert.rejects(apply("m1", intent(), steps(sig, ran)), (e: unknown) => {
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
    await apply("m1", intent(), steps("SIGTERM", ran), "finish");
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
      await assert.rejects(apply("m1", intent(), twice), /exited/);
      assert.equal(code, 130);
    } finally {
      process.exit = exit;
    }
  });

  it("carries on after a hang-up: the operation is not cut short", async () => {
    const ran: string[] = [];
    await apply("m1", intent(), steps("SIGHUP", ran));
    assert.deepEqual(ran, ["one", "two", "three"]);
    assert.ok(process.stderr.listenerCount("error") > 0, "output errors no longer kill boxctl");
  });
});
