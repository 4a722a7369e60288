// Development helper: boots N test hosts (as the fleet test does) with system1
// on foo-0.1, writes an Ansible inventory for them to $1 and holds them until
// SIGTERM/SIGINT, for trying the playbooks by hand:
//   ansible-playbook -i /tmp/inv.ini ansible/playbooks/rolling-cutover.yml -e ...
// (with ANSIBLE_COLLECTIONS_PATH pointing at an installed boxctl.boxctl).
//   node --import tsx test/fleet/hold.ts /tmp/inv.ini 3
import { writeFileSync } from "node:fs";
import { bootFleet, destroyFleet, inventory } from "./fleet.ts";

const [out = "/tmp/fleet-inventory.ini", n = "3"] = process.argv.slice(2);
const fleet = await bootFleet(Number(n));
writeFileSync(out, inventory(fleet));
process.stdout.write(`ready ${fleet.map((h) => `${h.name}:${h.pid}`).join(" ")}\n`);
const stop = async () => {
  await destroyFleet(fleet);
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
setInterval(() => undefined, 1 << 30);
