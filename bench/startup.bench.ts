// Start-up cost of the bundle: `boxctl --version` against `node -e ''`,
// both on this machine's node, alternating, in one run.
import { compare, timeOnce } from "./lib.ts";

const bundle = new URL("../dist/boxctl.mjs", import.meta.url).pathname;
console.log(`node ${process.version}, bundle ${bundle}`);
await compare(
  "boxctl --version vs node -e ''",
  () => timeOnce([process.execPath, bundle, "--version"]),
  () => timeOnce([process.execPath, "-e", ""]),
  30,
);
await compare(
  "boxctl --help vs node -e ''",
  () => timeOnce([process.execPath, bundle, "--help"]),
  () => timeOnce([process.execPath, "-e", ""]),
  30,
);
