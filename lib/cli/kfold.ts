/** `npm run cli -- kfold`: not implemented yet. */
export const help = "Usage: npm run cli -- kfold (not implemented yet)";

/** Runs the command. */
export async function run(_argv: string[]): Promise<number> {
  throw new Error("'kfold' is not implemented yet.");
}
