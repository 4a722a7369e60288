// Part of container.test.ts: the read verbs a script polls, list and
// app-status, with their tables and --json, on the running machine M of
// that file's test host (and, for list, a plain nspawn container beside it).
import assert from "node:assert/strict";
import { it } from "node:test";
import * as v from "valibot";
import { AppStatusJson, ListJson, StatusJson } from "../../src/cli/json-schema.ts";
import { sleep, type TestHost } from "../host/host.ts";

const ESC = new RegExp(`${String.fromCharCode(27)}\\[`);

/** boxctl ARGS --json in the host: its exit status, parsed stdout and stderr. */
export async function boxJson(host: TestHost, args: string[]) {
  const r = await host.boxctl([...args, "--json"]);
  return { code: r.code, doc: JSON.parse(r.stdout || "null"), stderr: r.stderr };
}

/** Its tests, in the caller's describe, in order; M is running on foo-0.1, generation 1. */
export function readVerbs(getHost: () => TestHost, suite: string, M: string): void {
  const box = (args: string[]) => getHost().boxctl(args);
  const json = (args: string[]) => boxJson(getHost(), args);

  it("list shows managed and other machines; --json matches the schema; another's name is refused", async () => {
    const other = `oth-${suite}`;
    await getHost().sh([
      "systemd-run",
      `--unit=${other}`,
      "systemd-nspawn",
      "--quiet",
      "--read-only",
      "--directory=/var/lib/boxctl/images/foo-0.1/rootfs",
      `--machine=${other}`,
      "sleep",
      "600",
    ]);
    // machined registers it once nspawn has set it up: seconds on a loaded machine.
    let registered = false;
    for (let i = 0; i < 600 && !registered; i++) {
      registered = (await getHost().sh(["machinectl", "list", "--no-legend"])).includes(other);
      if (!registered) await sleep(100);
    }
    assert.ok(registered, `${other} never showed in machinectl list`);
    const { code, doc } = await json(["list"]);
    assert.equal(code, 0);
    const l = v.parse(ListJson, doc);
    const mine = l.machines.find((m) => m.name === M);
    assert.deepEqual(
      [mine?.managed, mine?.state, mine?.image, mine?.generation],
      [true, "running", "foo-0.1", 1],
    );
    const theirs = l.machines.find((m) => m.name === other);
    assert.deepEqual([theirs?.managed, theirs?.state], [false, "running"]);
    const table = await box(["list"]);
    assert.match(table.stdout, /^MACHINE +STATE +BOOT +IMAGE +GEN +FALLBACK +MANAGER\n/);
    assert.match(
      table.stdout,
      new RegExp(`^${M} +running +disabled +foo-0\\.1 +1 +- +boxctl$`, "m"),
    );
    assert.doesNotMatch(table.stdout, ESC, "no colour when not on a TTY");
    const bare = await box(["list", "--no-legend"]);
    assert.doesNotMatch(bare.stdout, /MACHINE|listed/);
    const tty = await getHost().exec(["script", "-qec", "boxctl list", "/dev/null"]);
    assert.match(tty.stdout, ESC, "colour on a TTY");
    const noColor = await getHost().exec(["script", "-qec", "boxctl list", "/dev/null"], {
      env: { NO_COLOR: "1" },
    });
    assert.doesNotMatch(noColor.stdout, ESC, "NO_COLOR");
    // Its name is taken: a cutover must not make a boxctl machine of it (its
    // systemd-nspawn@ would fail "Machine already exists" after the mount).
    const taken = await box(["cutover-instance", other, "foo-0.1"]);
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, new RegExp(`a machine named ${other} is already running \\(`));
    assert.equal((await getHost().exec(["test", "-e", `/var/lib/machines/${other}`])).code, 1);
    assert.match((await box(["status", other])).stderr, /is not managed by boxctl/);
    await getHost().sh(["systemctl", "stop", other]);
  });

  it("app-status checks the machine's listed services", async () => {
    const none = await box(["app-status", M]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /set-services/);
    const set = await json(["set-services", M, "systemd-journald,dbus.socket"]);
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual(set.doc.services, ["systemd-journald", "dbus.socket"]);
    assert.equal(set.doc.changed, true);
    assert.doesNotMatch(set.stderr, /warning/);
    const typo = await box(["set-services", M, "systemd-journald,systemd-jurnald"]);
    assert.equal(typo.code, 0, typo.stderr);
    assert.match(
      typo.stderr,
      /warning: \S+ has no usable unit systemd-jurnald\.service \(not-found\)/,
    );
    assert.equal((await box(["set-services", M, "systemd-journald,dbus.socket"])).code, 0);
    const ok = await json(["app-status", M]);
    assert.equal(ok.code, 0, ok.stderr);
    const a = v.parse(AppStatusJson, ok.doc);
    assert.deepEqual(
      a.services.map((s) => [s.unit, s.state]),
      [
        ["systemd-journald.service", "active"],
        ["dbus.socket", "active"],
      ],
    );
    const bad = await json(["app-status", M, "--services", "systemd-journald,no-such-thing"]);
    assert.equal(bad.code, 1);
    // is-active would say "inactive"; a typo must not look like a stopped service.
    assert.equal(v.parse(AppStatusJson, bad.doc).services[1]?.state, "not-found");
    const s = v.parse(StatusJson, (await json(["status", M])).doc);
    assert.deepEqual(s.services, ["systemd-journald", "dbus.socket"]);
    assert.equal(s.state, "running");
    assert.deepEqual([s.mount.mounted, s.mount.instance], [true, 1]);
    assert.ok((s.changes?.bytes ?? 0) > 0);
  });
}
