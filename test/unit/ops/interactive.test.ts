// shell and login: what they run with and without a terminal, against a
// fake host.
import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { login, shell } from "../../../src/ops/interactive.ts";
import { cutover } from "../../../src/ops/switch.ts";
import { FakeHost } from "../../lib/fake-host.ts";
import { tempRoot } from "../../lib/fake-store.ts";

describe("shell", () => {
  let h: FakeHost;
  beforeEach(async () => {
    tempRoot(["foo-0.1"]);
    h = new FakeHost();
    await cutover(h, "web", "foo-0.1", { timeoutMs: 15_000 });
    h.calls.length = 0;
  });

  const last = () => h.commands[h.commands.length - 1];

  it("without CMD on a terminal: machinectl shell", async () => {
    await shell(h, "web", [], true);
    assert.equal(last(), "machinectl shell web");
  });

  it("without CMD and without a terminal: /bin/sh reads the script, and its status is boxctl's", async () => {
    h.checkExit = 3; // what the fake container's /bin/sh exits with
    assert.equal(await shell(h, "web", [], false), 3);
    assert.equal(last(), "systemd-run -M web --wait --pipe --quiet -- /bin/sh");
  });

  it("with CMD: runs it, terminal or not", async () => {
    for (const tty of [true, false]) {
      await shell(h, "web", ["/bin/sh", "-c", "true"], tty);
      assert.equal(last(), "systemd-run -M web --wait --pipe --quiet -- /bin/sh -c true");
    }
  });

  it("login on a terminal: machinectl login; without one it refuses, since that would wait for good", async () => {
    await login(h, "web", true);
    assert.equal(last(), "machinectl login web");
    h.calls.length = 0;
    await assert.rejects(login(h, "web", false), /login needs a terminal/);
    assert.deepEqual(h.commands, []);
  });
});
