// The container verbs, status/list/app-status and the output
// conventions, against real systemd in both test hosts. One host boot per
// suite; the steps run in order on one machine, as a sysadmin would.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as v from "valibot";
import { StatusJson } from "../../src/cli/json-schema.ts";
import { SUITES, sleep, TestHost } from "../host/host.ts";
import { boxJson, readVerbs } from "./container-reads.ts";
import { ok } from "./instances-helpers.ts";

// The container's name carries the suite, so that a failure names its host;
// the dash exercises unit-name escaping (var-lib-machines-ctl\x2d....mount).
const machineFor = (suite: string) => `ctl-${suite}`;

/** Drives `boxctl login` through a pty (util-linux script), typing only once prompted. */
const LOGIN_SCRIPT = `
ts=$(mktemp); fifo=$(mktemp -u); mkfifo "$fifo"
waitfor() { i=0; until grep -q "$1" "$ts"; do i=$((i+1)); [ $i -gt 150 ] && return 1; sleep 0.1; done; }
{ waitfor 'login: ' && printf 'root\\n' && waitfor '# ' && printf 'echo LOGIN-$((6*7))\\n' && waitfor 'LOGIN-42'; printf '\\035\\035\\035'; } > "$fifo" &
timeout 40 script -qefc "boxctl login $1" "$ts" < "$fifo" > /dev/null
rc=$?; cat "$ts"; exit $rc
`;

for (const suite of SUITES) {
  describe(`container verbs on ${suite}`, () => {
    const M = machineFor(suite);
    let host: TestHost;
    const box = (args: string[], env?: Record<string, string>) =>
      host.boxctl(args, env ? { env } : {});
    const json = (args: string[]) => boxJson(host, args);
    const isActive = async () =>
      (await host.exec(["systemctl", "is-active", `systemd-nspawn@${M}.service`])).stdout.trim();
    const inM = async (argv: string[]) => (await host.inMachine(M, argv)).stdout.trim();

    before(async () => {
      host = await TestHost.boot(suite, { store: "tmpfs" });
      await host.sh(["boxctl", "stage-image", "--quiet", "/srv/images/foo-0.1.tar"]);
      await host.sh(["boxctl", "cutover-instance", M, "foo-0.1"], { timeoutMs: 120_000 });
    });
    after(() => host?.destroy());

    it("rejects unknown machines (1), bad names, a new machine's name that is no hostname and 'stop' (2)", async () => {
      for (const verb of ["status", "start", "poweroff", "app-status", "configure", "login"]) {
        const r = await box([verb, "nosuchbox"]);
        assert.equal(r.code, 1, `${verb}: ${r.stderr}`);
        assert.match(r.stderr, /machine 'nosuchbox' is not managed by boxctl/);
        assert.match(r.stderr, /hint: /);
      }
      const bad = await box(["status", "../etc"]);
      assert.equal(bad.code, 2);
      // systemd-nspawn takes only a hostname: refused before anything is made.
      const under = await box(["cutover-instance", "web_2", "foo-0.1"]);
      assert.equal(under.code, 2);
      assert.match(
        under.stderr,
        /invalid machine name 'web_2': systemd-nspawn takes only a hostname/,
      );
      assert.equal((await host.exec(["test", "-e", "/var/lib/boxctl/machines/web_2"])).code, 1);
      const stop = await box(["stop", M]);
      assert.equal(stop.code, 2);
      assert.match(stop.stderr, /Did you mean 'poweroff'\?/);
      assert.equal(await isActive(), "active", "stop must not have stopped anything");
    });

    it("--dry-run prints the exact commands and changes nothing", async () => {
      const r = await box(["poweroff", M, "--dry-run"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `systemctl stop systemd-nspawn@${M}.service\n`);
      const s = await box(["restart", M, "--dry-run"]);
      assert.equal(
        s.stdout,
        [
          `systemctl stop systemd-nspawn@${M}.service`,
          `systemctl start 'var-lib-machines-ctl\\x2d${suite}.mount'`,
          `systemctl start systemd-nspawn@${M}.service`,
          "",
        ].join("\n"),
      );
      assert.equal((await box(["enable", M, "--dry-run"])).stdout, `machinectl enable ${M}\n`);
      assert.equal(
        (await box(["shell", M, "--dry-run", "true"])).stdout.split(" ")[0],
        "systemd-run",
      );
      assert.equal(await isActive(), "active");
      const en = await host.exec(["systemctl", "is-enabled", `systemd-nspawn@${M}.service`]);
      assert.equal(en.stdout.trim(), "disabled");
    });

    it("poweroff returns only once the container has stopped", async () => {
      const r = await json(["poweroff", M]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await isActive(), "inactive");
      assert.deepEqual([r.doc.verb, r.doc.changed, r.doc.running], ["poweroff", true, false]);
      const list = await host.sh(["machinectl", "list", "--no-legend"]);
      assert.doesNotMatch(list, new RegExp(`^${M}\\s`, "m"));
      const again = await json(["poweroff", M]);
      assert.equal(again.code, 0, "poweroff of a stopped container");
      assert.equal(again.doc.changed, false, "it was stopped already");
    });

    it("status works on a stopped container, and its --json matches the schema", async () => {
      const { code, doc } = await json(["status", M]);
      assert.equal(code, 0);
      const s = v.parse(StatusJson, doc);
      assert.equal(s.state, "stopped");
      assert.equal(s.enabled, false);
      assert.equal(s.current?.image, "foo-0.1");
      assert.equal(s.changes?.path, `/var/lib/boxctl/machines/${M}/instances/1/upper`);
      assert.equal(s.lastOperation?.verb, "cutover-instance");
      assert.equal(s.unit.activeState, "inactive");
      const t = await box(["status", M]);
      assert.match(t.stdout, new RegExp(`^${M} \\(managed by boxctl\\)\\n {2}State: +stopped`));
    });

    it("configure changes the instance without booting it and returns the status", async () => {
      const r = await box([
        "configure",
        M,
        "--",
        "sh",
        "-c",
        "echo configured-offline > /etc/c5-note && passwd -d root >/dev/null && test ! -e /run/systemd/system",
      ]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal((await box(["configure", M, "--", "sh", "-c", "exit 3"])).code, 3);
      assert.equal(await isActive(), "inactive");
      const upper = `/var/lib/boxctl/machines/${M}/instances/1/upper`;
      assert.equal(host.readFile(`${upper}/etc/c5-note`), "configured-offline\n");
      // Private users without a chown: the image's files were not all copied up.
      const du = Number((await host.sh(["du", "-sm", upper])).split("\t")[0]);
      assert.ok(du < 20, `upper holds ${du} MB after configure`);
    });

    it("start returns once booted; the configure change is there", async () => {
      const r = await json(["start", M]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual([r.doc.changed, r.doc.running, r.doc.booted], [true, true, true]);
      const state = await host.exec(["systemctl", "-M", M, "is-system-running"]);
      assert.match(state.stdout, /^(running|degraded)$/m);
      const note = await box(["shell", M, "cat", "/etc/c5-note"]);
      assert.equal(note.stdout, "configured-offline\n");
      const refused = await box(["configure", M, "--", "true"]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, new RegExp(`boxctl poweroff ${M}`));
    });

    it("shell passes back the command's exit status and stdin, and runs a script piped in", async () => {
      assert.equal((await box(["shell", M, "sh", "-c", "exit 7"])).code, 7);
      const echo = await host.exec(["boxctl", "shell", M, "cat"], { input: "piped-in\n" });
      assert.equal(echo.stdout, "piped-in\n");
      // No CMD, no terminal: the script on stdin runs, and its status is boxctl's.
      const script = await host.exec(["boxctl", "shell", M], {
        input: "echo from-script\nexit 5\n",
      });
      assert.deepEqual([script.code, script.stdout], [5, "from-script\n"]);
    });

    it("stages an image made from the machine as README says, owned as inside, and boots it", async (t) => {
      // boxctl shell's pipe and the guest's tar are the same on every suite.
      if (suite !== "bookworm") return t.skip("one code path; runs on bookworm");
      ok(
        await host.inMachine(M, [
          "sh",
          "-c",
          "echo snap > /srv/marker && chown 1234:1234 /srv/marker",
        ]),
      );
      // README, "An image from a machine", as written.
      const tar = `boxctl shell ${M} -- tar --numeric-owner --xattrs --xattrs-include='*' --acls --one-file-system -cpf - -C / . > /srv/snap.tar`;
      ok(await host.exec(["sh", "-c", tar]));
      const staged = ok(await box(["stage-image", "/srv/snap.tar", "--name", "snap"]));
      assert.doesNotMatch(staged.stderr, /cannot boot/);
      assert.match(
        await host.sh(["sh", "-c", "tar -tvf /srv/snap.tar --numeric-owner ./srv/marker"]),
        /^-\S+ 1234\/1234 /,
      );
      ok(await box(["cutover-instance", "snap1", "snap"]));
      assert.equal((await host.inMachine("snap1", ["cat", "/srv/marker"])).stdout, "snap\n");
      ok(await box(["poweroff", "snap1"]));
      ok(await box(["delete-machine", "snap1", "--yes"]));
      ok(await box(["delete-image", "snap"]));
      await host.sh(["rm", "/srv/snap.tar"]);
    });

    it("login opens a TTY session in the container, and refuses without a terminal", async () => {
      // Without a terminal it refuses at once, where machinectl login waited for good.
      const piped = await host.exec(["boxctl", "login", M], { input: "", timeoutMs: 20_000 });
      assert.equal(piped.code, 1);
      assert.match(piped.stderr, /login needs a terminal/);
      const r = await host.exec(["bash", "-c", LOGIN_SCRIPT, "login", M], { timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /login: root/);
      assert.match(r.stdout, /[\r\n]LOGIN-42\r?\n/);
    });

    readVerbs(() => host, suite, M);

    it("restart boots the same instance again; terminate kills it", async () => {
      const boot1 = await inM(["cat", "/proc/sys/kernel/random/boot_id"]);
      const r = await json(["restart", M]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual([r.doc.changed, r.doc.booted], [true, true]);
      const boot2 = await inM(["cat", "/proc/sys/kernel/random/boot_id"]);
      assert.ok(boot2 && boot2 !== boot1, "a new boot");
      assert.equal(await inM(["cat", "/etc/c5-note"]), "configured-offline");
      const t = await json(["terminate", M]);
      assert.equal(t.code, 0, t.stderr);
      assert.deepEqual([t.doc.changed, t.doc.running], [true, false]);
      assert.equal(await isActive(), "inactive");
      const s = v.parse(StatusJson, (await json(["status", M])).doc);
      assert.equal(s.state, "stopped");
      const help = await box(["terminate", "--help"]);
      assert.match(help.stdout, /data they were writing can be lost/);
    });

    it("--no-block starts and powers off without waiting", async () => {
      assert.equal((await box(["start", M, "--no-block"])).code, 0);
      assert.match(await isActive(), /^(active|activating)$/);
      await host.waitBooted(M);
      assert.equal((await box(["poweroff", M, "--no-block"])).code, 0);
      let state = await isActive();
      for (let i = 0; i < 100 && state !== "inactive"; i++) {
        await sleep(100);
        state = await isActive();
      }
      assert.equal(state, "inactive", "the container shut down after being asked to");
    });

    it("enable and machinectl agree; an enabled container comes back after a host reboot", async () => {
      const enabled = async () =>
        (await host.exec(["systemctl", "is-enabled", `systemd-nspawn@${M}.service`])).stdout.trim();
      const on = await json(["enable", M]);
      assert.equal(on.code, 0, on.stderr);
      assert.equal(await enabled(), "enabled");
      assert.deepEqual([on.doc.changed, on.doc.enabled], [true, true]);
      assert.equal((await json(["enable", M])).doc.changed, false, "enabled already");
      assert.equal((await box(["disable", M])).code, 0);
      assert.equal(await enabled(), "disabled");
      await host.sh(["machinectl", "enable", M]);
      assert.equal(v.parse(StatusJson, (await json(["status", M])).doc).enabled, true);
      await host.reboot();
      assert.match(await host.waitBooted(M), /^(running|degraded)$/);
      const s = v.parse(StatusJson, (await json(["status", M])).doc);
      assert.deepEqual(
        [s.state, s.enabled, s.mount.mounted, s.mount.instance],
        ["running", true, true, 1],
      );
      assert.equal(await inM(["cat", "/etc/c5-note"]), "configured-offline");
      // Nothing to recover after a clean reboot: recover says so, and where the machine stands.
      const rec = await json(["recover", M]);
      assert.equal(rec.code, 0, rec.stderr);
      assert.deepEqual(
        [rec.doc.changed, rec.doc.interrupted, rec.doc.current, rec.doc.running],
        [false, null, { gen: 1, image: "foo-0.1" }, true],
      );
    });

    it("completion offers verbs, machine names and image names", async () => {
      const script = await host.sh(["boxctl", "completion", "bash"]);
      const complete = async (words: string[]) =>
        (
          await host.sh([
            "bash",
            "-c",
            `${script}\nCOMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _boxctl; printf '%s\\n' "\${COMPREPLY[@]}"`,
            "x",
            ...words,
          ])
        )
          .trim()
          .split("\n");
      assert.deepEqual(await complete(["boxctl", "stat"]), ["status"]);
      assert.deepEqual(await complete(["boxctl", "status", "ctl-"]), [M]);
      assert.deepEqual(await complete(["boxctl", "cutover-instance", M, "foo"]), ["foo-0.1"]);
    });
  });
}
