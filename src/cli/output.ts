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

/**
 * How often a command run through npm checks that its launcher is still there, ms: `npx tracewarp …` (and `npm run`)
 * runs npm → `sh -c` → tracewarp. A SIGTERM sent to npm (by `docker stop`, a supervisor, `kill PID`) is passed to the
 * shell, which dies of it without passing it on; npm then exits too, and tracewarp would go on running, orphaned,
 * until killed (losing its last records). So tracewarp treats its parent going away as that SIGTERM.
 */
export const LAUNCHER_POLL_MS = 200;
/** A second signal this soon after the first is the same request delivered twice (the terminal's and npm's copy). */
export const DUPLICATE_SIGNAL_MS = 150;

/** What asked a command to stop. */
export interface StopRequest {
  /** `SIGINT`, `SIGTERM`, or `launcher` (the npm process that launched tracewarp went away). */
  cause: 'SIGINT' | 'SIGTERM' | 'launcher';
  /** Said on stderr: `SIGTERM`, or what happened to the launcher. */
  text: string;
  /** When (`Date.now()`), to tell a duplicate signal from a second Ctrl-C. */
  atMs: number;
}

/** The npm process that launched this one (`npx`, `npm exec`, `npm run`), by its environment; null when not run by npm. */
export function npmLauncher(): { what: string; pid: number } | null {
  // npm sets npm_lifecycle_event for what it runs: `npx` for npx / npm exec, the script's name for npm run.
  const event = process.env.npm_lifecycle_event;
  if (!event) return null;
  return { what: event === 'npx' ? 'npx' : `npm run ${event}`, pid: process.ppid };
}

/**
 * Resolves on the first SIGINT or SIGTERM, or, with `launcher` and when run through npm ({@link npmLauncher}), when
 * this process's parent went away (polled every {@link LAUNCHER_POLL_MS} ms on an unref'd timer); then removes its
 * handlers.
 */
export function onceInterrupted(opts: { launcher?: boolean } = {}): { promise: Promise<StopRequest>; dispose(): void } {
  let dispose = (): void => undefined;
  const promise = new Promise<StopRequest>((resolve) => {
    const h = (cause: StopRequest['cause'], text: string) => {
      dispose();
      resolve({ cause, text, atMs: Date.now() });
    };
    const onInt = () => h('SIGINT', 'SIGINT');
    const onTerm = () => h('SIGTERM', 'SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
    const npm = opts.launcher ? npmLauncher() : null;
    const watch = npm ? setInterval(() => {
      if (process.ppid !== npm.pid) h('launcher', `the ${npm.what} that launched tracewarp went away (its shell, pid ${npm.pid}, ended: npm and that shell do not pass a SIGTERM on), so stopping as on SIGTERM`);
    }, LAUNCHER_POLL_MS) : null;
    watch?.unref();
    dispose = () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      if (watch) clearInterval(watch);
    };
  });
  return { promise, dispose: () => dispose() };
}

/**
 * Calls `cb` on every SIGINT or SIGTERM after the stop request `first`, but for one that comes within
 * {@link DUPLICATE_SIGNAL_MS} of it (a Ctrl-C reaches tracewarp from the terminal and again from npm when npm's shell
 * passes it on). Returns the function that removes the handlers.
 */
export function onLaterSignals(first: StopRequest, cb: (sig: 'SIGINT' | 'SIGTERM') => void): () => void {
  const h = (sig: 'SIGINT' | 'SIGTERM') => {
    if (first.cause !== 'launcher' && Date.now() - first.atMs < DUPLICATE_SIGNAL_MS) return;
    cb(sig);
  };
  const onInt = () => h('SIGINT');
  const onTerm = () => h('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return () => {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  };
}

/** `1 request`, `2 requests`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** An Output whose stdout lines go to stderr (for helpers whose lines are progress, not results). */
export function toStderr(out: Output): Output {
  return { out: out.err, err: out.err, tty: out.tty };
}
