// host/boot.ts and host/unit-watch.ts: following a container's boot from
// the host, by busctl's signals or by polling, against the fake host.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BoxError } from "../../../src/base/errors.ts";
import { waitBooted } from "../../../src/host/boot.ts";
import { parseChange, unitObjectPath } from "../../../src/host/unit-watch.ts";
import { FakeHost } from "../../lib/fake-host.ts";

describe("following a boot", () => {
  // Two lines of `busctl monitor --json=short` on systemd 252, shortened.
  const service =
    '{"type":"signal","path":"/org/freedesktop/systemd1/unit/systemd_2dnspawn_40m1_2eservice","interface":"org.freedesktop.DBus.Properties","member":"PropertiesChanged","payload":{"type":"sa{sv}as","data":["org.freedesktop.systemd1.Service",{"StatusText":{"type":"s","data":"Container running: Ready."},"Result":{"type":"s","data":"success"}},["ExecStart"]]}}';
  const unit =
    '{"type":"signal","payload":{"type":"sa{sv}as","data":["org.freedesktop.systemd1.Unit",{"ActiveState":{"type":"s","data":"inactive"},"SubState":{"type":"s","data":"dead"},"Job":{"type":"(uo)","data":[0,"/"]}},[]]}}';

  it("reads the unit's object path and its PropertiesChanged signals as busctl prints them", () => {
    assert.equal(
      unitObjectPath("systemd-nspawn@m1.service"),
      "/org/freedesktop/systemd1/unit/systemd_2dnspawn_40m1_2eservice",
    );
    assert.deepEqual(parseChange(service), { statusText: "Container running: Ready." });
    assert.deepEqual(parseChange(unit), { activeState: "inactive" });
    assert.equal(parseChange("Monitoring bus message stream."), null);
    assert.equal(parseChange('{"type":"signal"}'), null);
  });

  const nspawn = "systemd-nspawn@m1.service";
  const withUnit = (active: "active" | "failed", statusText: string, monitor = true) => {
    const h = new FakeHost();
    h.busMonitor = monitor;
    h.units.set(nspawn, { active, statusText });
    return h;
  };

  for (const monitor of [true, false])
    it(`takes the status "Ready." as booted, without entering the container (${monitor ? "watched" : "polled, no D-Bus broker"})`, async () => {
      const h = withUnit("active", "Container running: Ready.", monitor);
      assert.equal(await waitBooted(h, "m1", 5000), "booted");
      assert.ok(h.commands.some((c) => c.startsWith("busctl monitor")));
      assert.ok(!h.commands.some((c) => c.startsWith("systemd-run")), h.commands.join("\n"));
    });

  it("polls where busctl is not installed", async () => {
    const h = withUnit("active", "Container running: Ready.", false);
    const spawn = h.spawn.bind(h);
    h.spawn = (argv) => {
      const child = spawn(argv);
      child.removeAllListeners();
      queueMicrotask(() =>
        child.emit("error", Object.assign(new Error("spawn busctl ENOENT"), { code: "ENOENT" })),
      );
      return child;
    };
    const run = h.run.bind(h);
    h.run = (argv, o) =>
      argv[0] === "busctl"
        ? Promise.reject(new Error("required program 'busctl' is not installed"))
        : run(argv, o);
    assert.equal(await waitBooted(h, "m1", 5000), "booted");
  });

  it("learns of the boot's end from the signal, not by asking again", async () => {
    const h = withUnit("active", "Container running.");
    h.onMonitor = (print) => print(service);
    const t0 = Date.now();
    assert.equal(await waitBooted(h, "m1", 60_000), "booted");
    assert.ok(Date.now() - t0 < 1000, `${Date.now() - t0} ms: not the 2 s re-read`);
    assert.equal(h.commands.filter((c) => c.startsWith("systemctl show")).length, 1);
  });

  it("polls, without spinning, when busctl ends during the boot", async () => {
    const h = withUnit("active", "Container running.");
    let shows = 0;
    const run = h.run.bind(h);
    h.run = (argv, o) => {
      if (argv[1] === "show" && ++shows === 3)
        h.units.set(nspawn, { active: "active", statusText: "Container running: Ready." });
      return run(argv, o);
    };
    h.onMonitor = () => {
      // The monitor's process dies: its close event, as the fake's kill() sends it.
      const child = h.spawned.at(-1);
      child?.emit("close", 1, null);
    };
    let sleeps = 0;
    h.sleep = async () => {
      sleeps++;
    };
    assert.equal(await waitBooted(h, "m1", 60_000), "booted");
    assert.equal(shows, 3);
    assert.equal(sleeps, 2, "after the read at attach, a poll's sleep before each read");
  });

  it("learns from the signal that the container stopped while booting", async () => {
    const h = withUnit("active", "Container running.");
    h.onMonitor = (print) => {
      h.units.set(nspawn, { active: "failed", statusText: "" });
      print(unit);
    };
    const t0 = Date.now();
    await assert.rejects(waitBooted(h, "m1", 60_000), /m1 stopped while booting \(unit failed/);
    assert.ok(Date.now() - t0 < 1000, `${Date.now() - t0} ms`);
  });

  it("says so at once when the container stops while booting", async () => {
    const h = withUnit("failed", "");
    await assert.rejects(waitBooted(h, "m1", 60_000), /m1 stopped while booting \(unit failed/);
  });

  it("gives up at --timeout when the container never reports ready", async () => {
    const h = withUnit("active", "Container running.");
    const t0 = Date.now();
    await assert.rejects(waitBooted(h, "m1", 100), /did not finish booting within 0 s/);
    assert.ok(Date.now() - t0 < 2000, `${Date.now() - t0} ms`);
  });

  it("names the host's inotify limit when it is nearly used up, and only then", async () => {
    const hintOf = async (h: FakeHost, timeoutMs: number) => {
      const e = await waitBooted(h, "m1", timeoutMs).catch((x: unknown) => x);
      assert.ok(e instanceof BoxError);
      return e.hint ?? "";
    };
    const out = withUnit("failed", "");
    out.inotify = { used: 120, max: 128 };
    const hint = await hintOf(out, 60_000);
    assert.match(
      hint,
      /nearly out of inotify instances \(120 of fs.inotify.max_user_instances=128/,
    );
    assert.match(
      hint,
      /sysctl -w fs.inotify.max_user_instances=8192.*then see: journalctl -u systemd-nspawn@m1/,
    );
    const slow = withUnit("active", "Container running.");
    slow.inotify = { used: 127, max: 128 };
    assert.match(await hintOf(slow, 100), /nearly out of inotify.*then see: journalctl -M m1 -b/);
    for (const inotify of [{ used: 112, max: 128 }, null]) {
      const h = withUnit("failed", "");
      h.inotify = inotify;
      assert.equal(await hintOf(h, 60_000), "see: journalctl -u systemd-nspawn@m1.service");
    }
  });
});
