// Bundles the CLI into one self-contained file that runs on Node 18+
// (Debian 12's nodejs) with no node_modules beside it.
import { chmodSync, readFileSync } from "node:fs";
import { build } from "esbuild";

const { version } = JSON.parse(readFileSync("package.json", "utf8"));
await build({
  entryPoints: ["src/main.ts"],
  outfile: "dist/boxctl.mjs",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node18",
  minify: false,
  legalComments: "none",
  banner: { js: "#!/usr/bin/env node" },
  define: { BOXCTL_VERSION: JSON.stringify(version) },
  logLevel: "warning",
});
chmodSync("dist/boxctl.mjs", 0o755);
