/** `npm run cli -- train`: not implemented yet. */
export const help = "Usage: npm run cli -- train (not implemented yet)";

/** Runs the command. */
export async function run(_argv: string[]): Promise<number> {
  throw new Error("'train' is not implemented yet.");
}
