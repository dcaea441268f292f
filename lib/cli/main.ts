/**
 * Command-line entry: `npm run cli -- <command> [options]`. Each command lives in
 * lib/cli/<command>.ts and exports `help` (its usage text) and `run(argv)` (exit code).
 */
export interface Command {
  /** Usage text printed by --help. */
  help: string;
  /** Runs the command with the arguments after its name; resolves to the exit code. */
  run(argv: string[]): Promise<number>;
}

const COMMANDS: Record<string, () => Promise<Command>> = {
  data: () => import("./data"),
  train: () => import("./train"),
  kfold: () => import("./kfold"),
  evaluate: () => import("./evaluate"),
  predict: () => import("./predict"),
  best: () => import("./best"),
  reference: () => import("./reference"),
};

const USAGE = `Usage: npm run cli -- <command> [options]

Commands:
  data       load UTKFace and print the load report
  train      train one model on a train/test split
  kfold      the report's K-fold protocol (resumable)
  evaluate   evaluate a saved run on held-out images
  predict    find the faces in images, predict age and gender per face
  best       the best model: cached frozen face features + trained heads
  reference  commit a run's records as a reference run (results/reference/)

Run a command with --help for its options.`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h") {
    console.log(USAGE);
    return name ? 0 : 1;
  }
  const load = COMMANDS[name];
  if (!load) {
    console.error(`Unknown command "${name}". Known commands: ${Object.keys(COMMANDS).join(", ")}.`);
    return 2;
  }
  const command = await load();
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(command.help);
    return 0;
  }
  return command.run(rest);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: Error) => {
      console.error(`error: ${err.message}`);
      process.exitCode = 1;
    },
  );
}
