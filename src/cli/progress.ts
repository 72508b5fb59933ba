import cliProgress from 'cli-progress';
import type { ReplayProgress } from '../replay/engine.ts';
import type { Output } from './output.ts';

/** A progress display: feed it snapshots, stop it at the end. */
export interface ProgressDisplay {
  update(p: ReplayProgress): void;
  stop(): void;
}

/**
 * Shows replay progress: a cli-progress bar when stderr is a terminal, a plain line every 5 s otherwise, nothing
 * when `quiet`.
 */
export function showReplayProgress(out: Output, total: number | null, quiet: boolean, label = 'replay'): ProgressDisplay {
  if (quiet) return { update: () => undefined, stop: () => undefined };
  if (out.tty && total !== null) {
    const bar = new cliProgress.SingleBar({
      format: `${label} |{bar}| {value}/{total} done · {inFlight} in flight · {errors} errors`,
      stream: process.stderr,
      hideCursor: true,
    }, cliProgress.Presets.shades_classic);
    bar.start(total, 0, { inFlight: 0, errors: 0 });
    return { update: (p) => bar.update(p.done, { inFlight: p.inFlight, errors: p.errors }), stop: () => bar.stop() };
  }
  let last = 0;
  return {
    update(p) {
      const now = Date.now();
      if (now - last < 5000) return;
      last = now;
      out.err(`${label}: ${p.done}${p.total !== null ? `/${p.total}` : ''} done, ${p.inFlight} in flight, ${p.errors} error${p.errors === 1 ? '' : 's'}`);
    },
    stop: () => undefined,
  };
}
