/** The CLI's only writers to the terminal. Commands print through these so tests can capture output. */
export interface Output {
  /** A line to stdout (results, the `listening on` line, JSON). */
  out(line: string): void;
  /** A line to stderr (progress, warnings, errors). */
  err(line: string): void;
  /** True when stderr is a terminal (progress bars are drawn only then). */
  readonly tty: boolean;
}

// A closed pipe (`tracewarp plan | head`) ends the output quietly instead of with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

export const processOutput: Output = {
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
  tty: Boolean(process.stderr.isTTY),
};

/** Resolves on the first SIGINT or SIGTERM (and removes its handlers). */
export function onceInterrupted(): { promise: Promise<string>; dispose(): void } {
  let dispose = (): void => undefined;
  const promise = new Promise<string>((resolve) => {
    const h = (sig: string) => {
      dispose();
      resolve(sig);
    };
    const onInt = () => h('SIGINT');
    const onTerm = () => h('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
    dispose = () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    };
  });
  return { promise, dispose: () => dispose() };
}

/** `1 request`, `2 requests`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** An Output whose stdout lines go to stderr (for helpers whose lines are progress, not results). */
export function toStderr(out: Output): Output {
  return { out: out.err, err: out.err, tty: out.tty };
}
