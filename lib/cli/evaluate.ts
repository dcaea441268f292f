/** `npm run cli -- evaluate`: not implemented yet. */
export const help = "Usage: npm run cli -- evaluate (not implemented yet)";

/** Runs the command. */
export async function run(_argv: string[]): Promise<number> {
  throw new Error("'evaluate' is not implemented yet.");
}
