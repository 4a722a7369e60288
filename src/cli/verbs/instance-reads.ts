// The read verbs of a machine's instances: history and diff.
import { gatherDiff } from "../../ops/diff.ts";
import { gatherHistory } from "../../ops/history.ts";
import { emit } from "../output.ts";
import { renderDiff, renderHistory } from "../render/instances.ts";
import type { Verb } from "../types.ts";
import { gen, machine } from "./args.ts";

export const instanceReadVerbs: Verb[] = [
  {
    name: "history",
    group: "image",
    args: [machine],
    summary: "List NAME's instances, marking the current and fallback ones.",
    details: `For each instance: its generation, image, when it was created and last active, and
the size of its changes (disk usage of its upper dir). JSON schema: docs/json.md.`,
    mutates: false,
    reads: true,
    run: async ({ args: [name], opts, r }) => {
      const { doc, warning } = await gatherHistory(r, name as string);
      if (warning) process.stderr.write(`boxctl: warning: ${warning}\n`);
      emit(
        opts,
        () => ({ ...doc }),
        (legend) => renderHistory(doc, legend),
      );
      return 0;
    },
  },
  {
    name: "diff",
    group: "image",
    args: [machine],
    summary: "List the paths an instance added, modified or deleted.",
    details: `Compares an instance's upper dir with its image: A added, M modified (present in the
image too), D deleted (overlay whiteouts; everything under an opaque directory that the
image has). OverlayFS bookkeeping is not reported. Needs getfattr (package attr).`,
    options: {
      instance: {
        type: "string",
        arg: "GEN",
        help: "The instance's generation (default: current).",
      },
    },
    mutates: false,
    reads: true,
    run: async ({ args: [name], opts, r }) => {
      const doc = await gatherDiff(r, name as string, gen(opts));
      emit(
        opts,
        () => ({ ...doc }),
        (legend) => renderDiff(doc, legend),
      );
      return 0;
    },
  },
];
