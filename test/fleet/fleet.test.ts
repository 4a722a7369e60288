// Issue 17: the boxctl.boxctl Ansible collection and its playbooks, run with
// ansible-playbook on this machine as the controller against three booted
// test hosts, each with system1 on foo-0.1. The collection is built and
// installed with ansible-galaxy, as a user would.
//
//   node --import tsx --test test/fleet/fleet.test.ts
//
// Needs root, `apt-get install ansible` (Debian 12: ansible-core 2.14, with
// community.docker's nsenter connection), python3 in the test hosts
// (test/host/recipe.sh) and dist/boxctl.mjs (npm run build). About 4 minutes.
//   BOXCTL_FLEET_CONTROLLER=DIR  run ansible from the root filesystem DIR
//                                (chroot), e.g. Debian 13's ansible-core 2.19
//   BOXCTL_FLEET_SUITE=trixie    Debian 13 test hosts instead of Debian 12
//   BOXCTL_FLEET_URL=0           stage foo-0.2 from /srv/images/foo-0.2.tar
//                                instead of from a URL
//   BOXCTL_FLEET_VERBOSE=1       show Ansible's output
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  bootFleet,
  controllerArgv,
  controllerMounts,
  controllerUnmounts,
  controllerVersion,
  destroyFleet,
  type FleetHost,
  imageSha256,
  installCollection,
  inventory,
  MACHINE,
  type MachineSnapshot,
  machineStatus,
  playbook,
  repo,
  SUITE,
  snapshot,
} from "./fleet.ts";

const STORE = "/var/lib/boxctl";
const BROKEN = "/etc/foo-broken";
// The health check boxctl runs inside each new instance: the right release,
// and not the deliberately broken copy of the image a test plants on one host.
const CHECK = `grep -qx VERSION=0.2 /etc/foo-release && test ! -e ${BROKEN}`;
controllerMounts();
const ansibleVersion = controllerVersion();
const haveAnsible = ansibleVersion !== null;
// The rollout stages foo-0.2 from http://fleet:PASSWORD@127.0.0.1:8000/ in
// each host (python3 -m http.server over /srv/images, on the host's own
// loopback: the test hosts have private networks, not a shared one), and the
// password must not show in Ansible's output. BOXCTL_FLEET_URL=0: from the
// file instead.
const URL_MODE = process.env.BOXCTL_FLEET_URL !== "0";
const SECRET = "s3cret-pw";

describe("Ansible collection boxctl.boxctl against a fleet of three hosts", {
  skip: !haveAnsible && "ansible-playbook is not installed (apt-get install ansible)",
}, () => {
  process.stderr.write(`controller: ${ansibleVersion}; hosts: Debian ${SUITE}\n`);
  let fleet: FleetHost[] = [];
  let collections = "";
  let inv = "";
  const sha02 = haveAnsible ? imageSha256("foo-0.2.tar") : "";

  const host = (name: string) => {
    const h = fleet.find((f) => f.name === name);
    if (!h) throw new Error(`no host ${name}`);
    return h.host;
  };
  const roll = (vars: Record<string, unknown> = {}, ...args: string[]) =>
    playbook(collections, inv, [
      join(repo, "ansible/playbooks/rolling-cutover.yml"),
      "-e",
      JSON.stringify({
        boxctl_image_name: "foo-0.2",
        ...(URL_MODE
          ? { boxctl_image_url: `http://fleet:${SECRET}@127.0.0.1:8000/foo-0.2.tar` }
          : { boxctl_image_path: "/srv/images/foo-0.2.tar" }),
        boxctl_image_sha256: sha02,
        boxctl_check: CHECK,
        ...vars,
      }),
      ...args,
    ]);
  const rollback = (...args: string[]) =>
    playbook(collections, inv, [
      join(repo, "ansible/playbooks/rollback.yml"),
      "-e",
      JSON.stringify({ boxctl_image_name: "foo-0.2" }),
      ...args,
    ]);
  const images = async (name: string) =>
    (
      JSON.parse(await host(name).sh(["boxctl", "list-images", "--json"])) as {
        images: { name: string }[];
      }
    ).images.map((i) => i.name);
  const onImage = async (name: string) => (await machineStatus(host(name))).current?.image;

  before(
    async () => {
      collections = installCollection();
      fleet = await bootFleet(3);
      inv = join(dirname(collections), "inventory.ini");
      writeFileSync(inv, inventory(fleet));
      if (URL_MODE) {
        for (const h of fleet) {
          const server = "python3 -m http.server --bind 127.0.0.1 --directory /srv/images 8000";
          await h.host.sh(["systemd-run", "--unit=fleet-http", ...server.split(" ")]);
          // Polls until the server answers (no fixed sleep).
          await h.host.sh([
            "python3",
            "-c",
            "import time, urllib.request as u\nfor _ in range(300):\n  try: u.urlopen('http://127.0.0.1:8000/'); break\n  except OSError: time.sleep(0.05)\nelse: raise SystemExit('no http server')",
          ]);
        }
      }
    },
    { timeout: 600_000 },
  );
  after(async () => {
    await destroyFleet(fleet);
    controllerUnmounts();
    if (collections) rmSync(dirname(collections), { recursive: true, force: true });
  });

  it("ansible-doc renders the modules' documentation", () => {
    for (const mod of ["boxctl_image", "boxctl_machine", "boxctl_info"]) {
      const r = spawnSync(...controllerArgv("ansible-doc", [`boxctl.boxctl.${mod}`]), {
        encoding: "utf8",
        env: { ...process.env, ANSIBLE_COLLECTIONS_PATH: collections, ANSIBLE_NOCOLOR: "1" },
      });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /OPTIONS/);
      assert.match(r.stdout, /RETURN VALUES/);
      assert.doesNotMatch(r.stderr, /ERROR|WARNING/, r.stderr);
    }
  });

  it("--check --diff changes nothing and shows each host's planned image change", async () => {
    const snaps = await Promise.all(fleet.map((h) => snapshot(h.host)));
    const r = await roll({}, "--check", "--diff");
    assert.equal(r.code, 0, r.output);
    for (const h of fleet) {
      assert.equal(r.recap[h.name]?.failed, 0, r.output);
      assert.ok((r.recap[h.name]?.changed ?? 0) >= 1, r.output);
    }
    // One diff per host: the image to be staged and the planned cutover.
    assert.equal(r.output.match(/^-image: foo-0\.1 \(gen 1\)$/gm)?.length, 3, r.output);
    assert.equal(r.output.match(/^\+image: foo-0\.2$/gm)?.length, 6, r.output);
    assert.equal(r.output.match(/^\+fallback: foo-0\.1 \(gen 1\)$/gm)?.length, 3, r.output);
    for (const [i, h] of fleet.entries()) {
      assert.deepEqual(await snapshot(h.host), snaps[i], `${h.name} changed in check mode`);
      assert.deepEqual(await images(h.name), ["foo-0.1"], `${h.name} staged in check mode`);
    }
  });

  it("rolls three hosts from foo-0.1 to foo-0.2 in batches of 1 and 2, with a carry policy and a keep setting; a second run changes nothing", async () => {
    // keep 10: set and shown, but no later test here makes that many instances.
    const settings = { boxctl_carry: "identity,etc", boxctl_keep: "10" };
    const r = await roll(settings, "-v");
    assert.equal(r.code, 0, r.output);
    if (URL_MODE) assert.doesNotMatch(r.output, new RegExp(SECRET), "the URL's password leaked");
    // The mutating verbs' own --json documents come back as `result` (-v shows them).
    assert.match(r.output, /"verb": "stage-image"/);
    assert.match(r.output, /"verb": "cutover-instance"/);
    // serial [1, 2, "100%"]: Ansible announces the play once per batch.
    assert.equal(r.output.match(/^PLAY \[Rolling cutover/gm)?.length, 2, r.output);
    for (const h of fleet) {
      assert.equal(r.recap[h.name]?.changed, 2, r.output); // staged, cut over
      const s = await machineStatus(h.host);
      assert.equal(s.state, "running");
      assert.equal(s.current?.image, "foo-0.2");
      assert.deepEqual(s.fallback, { ...s.fallback, gen: 1, image: "foo-0.1" });
      const rel = await h.host.inMachine(MACHINE, ["cat", "/etc/foo-release"]);
      assert.match(rel.stdout, /VERSION=0\.2/);
      const set = JSON.parse(await h.host.sh(["boxctl", "status", MACHINE, "--json"]));
      assert.deepEqual([set.carry, set.keep], [{ identity: true, etc: true, paths: [] }, 10]);
    }
    const again = await roll(settings);
    assert.equal(again.code, 0, again.output);
    for (const h of fleet) {
      assert.equal(again.recap[h.name]?.changed, 0, again.output);
      assert.equal(again.recap[h.name]?.failed, 0, again.output);
    }
  });

  it("rollback.yml puts every host back on foo-0.1, and a second run changes nothing", async () => {
    const r = await rollback("--diff");
    assert.equal(r.code, 0, r.output);
    for (const h of fleet) {
      assert.equal(r.recap[h.name]?.changed, 1, r.output);
      assert.equal(await onImage(h.name), "foo-0.1");
    }
    const again = await rollback();
    assert.equal(again.code, 0, again.output);
    for (const h of fleet) assert.equal(again.recap[h.name]?.changed, 0, again.output);
  });

  it("a health check failing on the second host: it falls back by itself, the first is rolled back, the third is never touched", async () => {
    // A broken copy of foo-0.2 on h2 only: its instances fail the check.
    await host("h2").sh(["touch", `${STORE}/images/foo-0.2/rootfs${BROKEN}`]);
    const untouched: MachineSnapshot = await snapshot(host("h3"));
    const h2before = await machineStatus(host("h2"));
    // One host per batch, so that h3 would come after h2.
    const r = await roll({ boxctl_serial: [1] });
    assert.notEqual(r.code, 0, r.output);
    assert.match(r.output, /rollout of foo-0\.2 stopped at h2/);
    // The cause, from boxctl's JSON, before where it left the machine.
    assert.match(
      r.output,
      /system1: cutover to foo-0\.2 failed \(boxctl exit 1\): --check '[^']*' failed inside system1 \(exit 1\)[^;]*; boxctl went back to foo-0\.1/,
    );
    assert.match(r.output, /Hosts rolled back: h1\./);
    assert.equal(r.recap.h1?.failed, 0, r.output);
    assert.equal(r.recap.h2?.failed, 1, r.output);
    assert.equal(r.recap.h2?.rescued, 1, r.output);
    assert.equal(r.recap.h3, undefined, `h3 was contacted:\n${r.output}`);

    const h1 = await machineStatus(host("h1"));
    assert.equal(h1.current?.image, "foo-0.1");
    assert.equal(h1.state, "running");
    assert.equal(h1.fallback?.image, "foo-0.2", "h1 had been cut over, then fell back");

    const h2 = (await machineStatus(host("h2"))) as Awaited<ReturnType<typeof machineStatus>> & {
      lastOperation: { verb: string; result: string };
    };
    assert.deepEqual(h2.current, h2before.current, "h2 went back to the instance it left");
    assert.equal(h2.state, "running");
    assert.equal(h2.lastOperation.verb, "cutover-instance");
    assert.equal(h2.lastOperation.result, "rolled-back");

    assert.deepEqual(await snapshot(host("h3")), untouched, "h3 changed");
    await host("h2").sh(["rm", `${STORE}/images/foo-0.2/rootfs${BROKEN}`]);
  });

  it("default batches, failure on the third host: its batch-mate and the first batch are rolled back", async () => {
    // Batches [h1] then [h2, h3]; h2 succeeds alongside h3, which fails.
    await host("h3").sh(["touch", `${STORE}/images/foo-0.2/rootfs${BROKEN}`]);
    const r = await roll();
    assert.notEqual(r.code, 0, r.output);
    assert.match(r.output, /rollout of foo-0\.2 stopped at h3/);
    assert.match(r.output, /Hosts rolled back: h1, h2\./);
    for (const h of fleet) {
      assert.equal(await onImage(h.name), "foo-0.1", `${h.name} is not back on foo-0.1`);
      assert.equal((await machineStatus(h.host)).state, "running");
    }
    assert.equal(r.recap.h3?.failed, 1, r.output);
    await host("h3").sh(["rm", `${STORE}/images/foo-0.2/rootfs${BROKEN}`]);
  });

  it("a host-side health check failing after a good cutover: the playbook rolls that host back itself", async () => {
    await host("h1").sh(["touch", "/etc/fleet-unhealthy"]);
    const untouched = await snapshot(host("h2"));
    const r = await roll({
      boxctl_serial: [1],
      boxctl_health_argv: ["test", "!", "-e", "/etc/fleet-unhealthy"],
    });
    assert.notEqual(r.code, 0, r.output);
    assert.match(r.output, /rollout of foo-0\.2 stopped at h1/);
    assert.match(r.output, /Hosts rolled back: h1\./);
    assert.equal(r.recap.h2, undefined, r.output);
    const h1 = (await machineStatus(host("h1"))) as Awaited<ReturnType<typeof machineStatus>> & {
      lastOperation: { verb: string; result: string };
    };
    assert.equal(h1.current?.image, "foo-0.1");
    assert.equal(h1.fallback?.image, "foo-0.2");
    assert.deepEqual([h1.lastOperation.verb, h1.lastOperation.result], ["fallback-instance", "ok"]);
    assert.deepEqual(await snapshot(host("h2")), untouched, "h2 changed");
    await host("h1").sh(["rm", "/etc/fleet-unhealthy"]);
  });

  it("boxctl_machine makes a machine with its settings, then state=absent powers it off and deletes it on every host; a second run of each changes nothing", async () => {
    const play = join(dirname(collections), "absent.yml");
    const task = (args: string) =>
      `    - boxctl.boxctl.boxctl_machine: {name: gone1, ${args}}\n      register: r\n    - ansible.builtin.set_fact: {changes: "{{ (changes | default([])) + [r.changed] }}"}\n`;
    // A new machine's settings are set after the cutover that creates it; its
    // private users are the cutover's own choice (--private-users no).
    const made =
      "image: foo-0.1, carry: none, services: [nginx, postgresql], keep: '3', private_users: false";
    const status =
      "    - ansible.builtin.command: boxctl status gone1 --json\n      register: s\n      changed_when: false\n" +
      `    - ansible.builtin.assert: {that: ["(s.stdout | from_json).services == ['nginx', 'postgresql']", "(s.stdout | from_json).keep == 3", "not (s.stdout | from_json).carry.identity", "(s.stdout | from_json).privateUsers == None", "not (s.stdout | from_json).nextPrivateUsers"]}\n`;
    writeFileSync(
      play,
      `- hosts: fleet\n  gather_facts: false\n  tasks:\n${task(made)}${task(made)}${status}${task("state: absent")}${task("state: absent")}    - ansible.builtin.assert: {that: "changes == [true, false, true, false]"}\n`,
    );
    const r = await playbook(collections, inv, [play]);
    assert.equal(r.code, 0, r.output);
    for (const f of fleet) {
      assert.equal(r.recap[f.name]?.failed, 0, r.output);
      const status = await f.host.exec(["boxctl", "status", "gone1"]);
      assert.match(status.stderr, /machine 'gone1' is not managed by boxctl/, f.name);
      assert.equal((await f.host.exec(["test", "-e", "/var/lib/machines/gone1"])).code, 1);
    }
  });
});
