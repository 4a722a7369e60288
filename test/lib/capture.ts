// What a piece of code printed on stdout or stderr, which it writes to
// directly (as main.ts and the verbs do), for tests to assert on.
export async function capture(
  stream: "stdout" | "stderr",
  fn: () => unknown | Promise<unknown>,
): Promise<string> {
  const out: string[] = [];
  const s = process[stream];
  const write = s.write;
  s.write = ((t: string) => out.push(t) > 0) as typeof s.write;
  try {
    await fn();
  } finally {
    s.write = write;
  }
  return out.join("");
}
