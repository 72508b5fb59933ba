import cliProgress from 'cli-progress';
import type { ReplayEngine, ReplayProgress } from '../replay/engine.ts';
import type { Output } from './output.ts';

/**
 * Shows replay progress: a cli-progress bar when stderr is a terminal, a plain line every 5 s otherwise, nothing
 * when `quiet`. Returns a function that stops it.
 */
export function showReplayProgress(engine: ReplayEngine, out: Output, total: number | null, quiet: boolean): () => void {
  if (quiet) return () => undefined;
  if (out.tty && total !== null) {
    const bar = new cliProgress.SingleBar({
      format: 'replay |{bar}| {value}/{total} done · {inFlight} in flight · {errors} errors',
      stream: process.stderr,
      hideCursor: true,
    }, cliProgress.Presets.shades_classic);
    bar.start(total, 0, { inFlight: 0, errors: 0 });
    const on = (p: ReplayProgress) => bar.update(p.done, { inFlight: p.inFlight, errors: p.errors });
    engine.on('progress', on);
    return () => {
      engine.off('progress', on);
      bar.stop();
    };
  }
  let last = 0;
  const on = (p: ReplayProgress) => {
    const now = Date.now();
    if (now - last < 5000) return;
    last = now;
    out.err(`replay: ${p.done}${total !== null ? `/${total}` : ''} done, ${p.inFlight} in flight, ${p.errors} errors`);
  };
  engine.on('progress', on);
  return () => engine.off('progress', on);
}
