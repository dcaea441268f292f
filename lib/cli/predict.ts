/** `npm run cli -- predict`: not implemented yet. */
export const help = "Usage: npm run cli -- predict (not implemented yet)";

/** Runs the command. */
export async function run(_argv: string[]): Promise<number> {
  throw new Error("'predict' is not implemented yet.");
}
