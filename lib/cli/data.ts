/** `npm run cli -- data`: not implemented yet. */
export const help = "Usage: npm run cli -- data (not implemented yet)";

/** Runs the command. */
export async function run(_argv: string[]): Promise<number> {
  throw new Error("'data' is not implemented yet.");
}
