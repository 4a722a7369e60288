// Writes docs/boxctl.8 from the verb table: npm run man.
import { readFileSync, writeFileSync } from "node:fs";
import { manPage } from "../src/cli/man.ts";
import { VERBS } from "../src/cli/table.ts";

const root = new URL("..", import.meta.url);
const { version } = JSON.parse(readFileSync(new URL("package.json", root), "utf8"));
writeFileSync(new URL("docs/boxctl.8", root), manPage(VERBS, version));
