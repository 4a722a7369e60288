// The one question boxctl asks: before it deletes what cannot come back
// (reset, delete-machine, prune). Asked on stderr, so that stdout stays
// the command's output.
import { createInterface } from "node:readline";

/** True if the answer on the terminal is y or yes. */
export async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await new Promise<string>((res) => rl.question(question, res));
  rl.close();
  return /^y(es)?$/i.test(answer.trim());
}
