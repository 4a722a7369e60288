// Part of powercut.test.ts: power cuts in the middle of what is not a
// switch: a stage-image (with and without files linked to another image's)
// and a delete-machine. Run in that file's describe, on its test host.
import assert from "node:assert/strict";
import { it } from "node:test";
import type { TestHost } from "../host/host.ts";
import { isActive, ok, STORE } from "./instances-helpers.ts";

export interface JournalEntry {
  [field: string]: string;
}

/** The journal entries boxctl wrote about machine, oldest first. */
export async function journal(host: TestHost, machine = "system1"): Promise<JournalEntry[]> {
  const out = await host.sh([
    "journalctl",
    "-t",
    "boxctl",
    `BOXCTL_MACHINE=${machine}`,
    "-o",
    "json",
    "--no-pager",
  ]);
  return out
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as JournalEntry);
}

/** Its tests, on the host getHost() gives. */
export function beyondSwitches(getHost: () => TestHost): void {
  it("a stage-image cut off mid-way leaves no image, and its debris goes with the next command", async () => {
    const host = getHost();
    const images = await host.sh(["ls", `${STORE}/images`]);
    const run = host.exec([
      "sh",
      "-c",
      "boxctl stage-image --verbose /srv/images/foo-0.2.tar --name cut-stage 2>/tmp/cut.err",
    ]);
    // Cut once tar is unpacking into staging/.
    for (let i = 0; i < 600; i++) {
      if ((await host.exec(["grep", "-q", "^+ tar", "/tmp/cut.err"])).code === 0) break;
    }
    await host.powerCut();
    await run;
    // No operation of a machine was pending: recovery has nothing to do at this boot.
    await host.start();
    await host.waitBooted("system1");
    assert.equal(await host.sh(["ls", `${STORE}/images`]), images, "no half image is visible");
    ok(await host.boxctl(["list-images"]));
    assert.equal((await host.sh(["ls", "-A", `${STORE}/staging`])).trim(), "");
  });

  it("a stage-image cut off while it links files to another image's leaves that image exactly as it was", async () => {
    const host = getHost();
    const bash = `${STORE}/images/foo-0.2/rootfs/usr/bin/bash`;
    const links = await host.sh(["stat", "-c", "%h", bash]);
    const run = host.exec([
      "sh",
      "-c",
      "boxctl stage-image --verbose /srv/images/foo-0.2.tar --name cut-share 2>/tmp/share.err",
    ]);
    // The directories' times are kept just before the links start (store/share.ts).
    for (let i = 0; i < 600; i++) {
      if (
        (await host.exec(["grep", "-q", "^+ tar -c --format=posix", "/tmp/share.err"])).code === 0
      )
        break;
    }
    // Still linking (some 6,000 files at 0.6 ms each on a test host's overlayfs root).
    const done = (await host.exec(["test", "-e", `${STORE}/images/cut-share`])).code === 0;
    await host.powerCut();
    await run;
    assert.ok(!done, "the stage was cut before it finished");
    await host.start();
    await host.waitBooted("system1");
    assert.equal((await host.exec(["test", "-e", `${STORE}/images/cut-share`])).code, 1);
    ok(await host.boxctl(["list-images"]));
    assert.equal((await host.sh(["ls", "-A", `${STORE}/staging`])).trim(), "");
    // The debris's links went with it; foo-0.2 is still exactly its archive.
    assert.equal(await host.sh(["stat", "-c", "%h", bash]), links);
    const cmp = await host.exec([
      "tar",
      "--numeric-owner",
      "-d",
      "-f",
      "/srv/images/foo-0.2.tar",
      "-C",
      `${STORE}/images/foo-0.2/rootfs`,
    ]);
    assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
  });

  it("a delete-machine of an enabled machine cut off before its first change is finished at boot", async () => {
    const host = getHost();
    const D = "d1";
    ok(await host.boxctl(["cutover-instance", D, "foo-0.1"]));
    ok(await host.boxctl(["enable", D]));
    ok(await host.boxctl(["poweroff", D]));
    const r = await host.boxctl(["delete-machine", D, "--yes"], {
      env: { BOXCTL_CRASH_AFTER: "intent" },
    });
    assert.equal(r.code, 137, r.stderr);
    await host.powerCut();
    await host.start();
    // system1 is enabled too: the boot goes on, whatever becomes of d1's start.
    await host.waitBooted("system1");
    const gone = async (path: string) => (await host.exec(["test", "-e", path])).code !== 0;
    assert.ok(await gone(`${STORE}/machines/${D}`), "no record, no instances, no intent");
    assert.ok(await gone(`/var/lib/machines/${D}`));
    assert.ok(await gone(`/etc/systemd/system/var-lib-machines-${D}.mount`));
    assert.ok(await gone(`/etc/systemd/nspawn/${D}.nspawn`));
    const enabled = await host.exec(["systemctl", "is-enabled", `systemd-nspawn@${D}.service`]);
    assert.equal(enabled.stdout.trim(), "disabled");
    // Its start, queued by the boot, was called off rather than left to fail.
    const failed = await host.exec([
      "systemctl",
      "is-failed",
      `systemd-nspawn@${D}.service`,
      `var-lib-machines-${D}.mount`,
    ]);
    assert.equal(failed.stdout, "inactive\ninactive\n");
    const rec = (await journal(host, D)).filter((e) => e.BOXCTL_OPERATION === "recover").at(-1);
    assert.deepEqual(
      [rec?.BOXCTL_RESULT, rec?.BOXCTL_AT_BOOT, rec?.BOXCTL_INTERRUPTED],
      ["completed", "yes", "delete-machine"],
    );
    assert.equal(await isActive(host), true, "the other machine runs");
    assert.doesNotMatch(ok(await host.boxctl(["list"])).stdout, /^d1 /m);
  });
}
