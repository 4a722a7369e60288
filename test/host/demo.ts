// The prescribed workflow from the original tool's README, run for real
// inside a throw-away test host. Each step prints the boxctl command, its
// output, and the container's /etc/foo-release afterwards.
import { type Suite, TestHost } from "./host.ts";

const suite = (process.argv[2] ?? "bookworm") as Suite;
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

async function main(): Promise<void> {
  console.log(bold(`Booting a throw-away Debian ${suite} test host with systemd ...`));
  const host = await TestHost.boot(suite);
  let failed = false;
  try {
    const step = async (title: string, args: string[]) => {
      console.log(`\n${bold(`== ${title}`)}\n$ boxctl ${args.join(" ")}`);
      const r = await host.boxctl(args, { timeoutMs: 300_000 });
      process.stdout.write(r.stdout + r.stderr);
      if (r.code !== 0) throw new Error(`boxctl ${args.join(" ")} exited ${r.code}`);
      const running = await host.exec(["systemctl", "is-active", "systemd-nspawn@system1"]);
      const release = await host.exec(["cat", "/var/lib/machines/system1/etc/foo-release"]);
      const marker = await host.exec(["cat", "/var/lib/machines/system1/root/written-in-0.1"]);
      console.log(`   container: ${running.stdout.trim()}`);
      console.log(
        `   /etc/foo-release: ${release.code === 0 ? release.stdout.trim().replace(/\n/g, " ") : "(not mounted)"}`,
      );
      if (marker.code === 0) console.log(`   /root/written-in-0.1: ${marker.stdout.trim()}`);
    };
    await step("Stage the image foo-0.1", ["stage-image", "/srv/images/foo-0.1.tar"]);
    await step("Create system1 on foo-0.1 (it starts and boots)", [
      "cutover-instance",
      "system1",
      "foo-0.1",
    ]);
    console.log("\n$ (inside system1) echo 'a change made on foo-0.1' > /root/written-in-0.1");
    await host.sh([
      "systemd-run",
      "-M",
      "system1",
      "--wait",
      "--pipe",
      "-q",
      "sh",
      "-c",
      "echo 'a change made on foo-0.1' > /root/written-in-0.1",
    ]);
    await step("Stop the container", ["poweroff", "system1"]);
    await step("Start the container", ["start", "system1"]);
    await step("Stage a new version, foo-0.2", ["stage-image", "/srv/images/foo-0.2.tar"]);
    await step("Cut system1 over to a new instance of foo-0.2", [
      "cutover-instance",
      "system1",
      "foo-0.2",
    ]);
    await step("Something is wrong: fall back to foo-0.1, with its changes", [
      "fallback-instance",
      "system1",
    ]);
    const release = await host.sh(["cat", "/var/lib/machines/system1/etc/foo-release"]);
    const marker = await host.exec(["cat", "/var/lib/machines/system1/root/written-in-0.1"]);
    if (!/VERSION=0\.1/.test(release) || marker.code !== 0) {
      throw new Error("after the fallback, system1 is not on its foo-0.1 instance with its change");
    }
    await step("Where things stand", ["list-images"]);
    console.log(`\n$ machinectl list\n${await host.sh(["machinectl", "list"])}`);
    console.log(
      bold("Demo complete: system1 is back on its foo-0.1 instance, with the change made there."),
    );
  } catch (e) {
    failed = true;
    console.error(`\ndemo failed: ${(e as Error).message}`);
  } finally {
    await host.destroy();
  }
  process.exitCode = failed ? 1 : 0;
}

await main();
