// Finds an operation that a crash or a kill interrupted (intent.json left
// behind) and completes it or rolls it back, saying which it did.
// Owned by the instances work; this stub does nothing yet.
export async function recoverInterrupted(_name: string): Promise<void> {}
