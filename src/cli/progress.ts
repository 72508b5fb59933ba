import cliProgress from 'cli-progress';
import type { ReplayProgress } from '../replay/engine.ts';
import type { LiveFigures } from '../results/collector.ts';
import type { Output } from './output.ts';

/** A progress display: feed it snapshots (and the results thread's running figures), stop it at the end. */
export interface ProgressDisplay {
  update(p: ReplayProgress): void;
  live(l: LiveFigures): void;
  stop(): void;
}

/** The window the current rates are measured over, ms; and how often a non-terminal line is printed, ms. */
export const RATE_WINDOW_MS = 5000;
export const PLAIN_LINE_MS = 5000;

/**
 * What the progress line says, from engine snapshots and the results thread's figures: elapsed of the schedule's
 * length, current sent rate vs scheduled rate (over {@link RATE_WINDOW_MS}), in flight, errors, running p99s.
 * `nowMs` is passed in so it can be tested without waiting.
 */
export class ProgressLine {
  private readonly history: Array<{ atMs: number; scheduled: number; sent: number }> = [];
  private startMs: number | null = null;
  private last: ReplayProgress | null = null;
  private figures: LiveFigures | null = null;

  constructor(private readonly durationS: number | null, private readonly nowMs: () => number = Date.now) {}

  update(p: ReplayProgress): void {
    const now = this.nowMs();
    if (this.startMs === null && p.scheduled > 0) this.startMs = now;
    this.last = p;
    this.history.push({ atMs: now, scheduled: p.scheduled, sent: p.sent });
    while (this.history.length > 2 && this.history[0]!.atMs < now - RATE_WINDOW_MS) this.history.shift();
  }

  live(l: LiveFigures): void {
    this.figures = l;
  }

  /** Current rates, req/s: requests falling due and requests sent, over the window; null until there are two snapshots. */
  rates(): { scheduled: number; sent: number } | null {
    const a = this.history[0];
    const b = this.history[this.history.length - 1];
    if (!a || !b || b.atMs <= a.atMs) return null;
    const s = (b.atMs - a.atMs) / 1000;
    return { scheduled: (b.scheduled - a.scheduled) / s, sent: (b.sent - a.sent) / s };
  }

  text(): string {
    const p = this.last;
    if (!p) return 'starting';
    const elapsedS = this.startMs === null ? 0 : (this.nowMs() - this.startMs) / 1000;
    const r = this.rates();
    const f = this.figures;
    const ms = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${v >= 100 ? Math.round(v) : v.toFixed(1)} ms`);
    return [
      `${elapsedS.toFixed(0)}${this.durationS !== null ? `/${Math.ceil(this.durationS)}` : ''} s`,
      `${p.done}${p.total !== null ? `/${p.total}` : ''} done`,
      r ? `${r.sent.toFixed(1)} req/s sent (scheduled ${r.scheduled.toFixed(1)})` : null,
      `${p.inFlight} in flight`,
      `${p.errors} error${p.errors === 1 ? '' : 's'}`,
      f ? `p99 ${ms(f.latencyP99Ms)}, TTFT p99 ${ms(f.ttftP99Ms)} (last 10 s)` : null,
    ].filter(Boolean).join(' · ');
  }
}

/**
 * Shows replay progress on stderr: a cli-progress bar with the {@link ProgressLine} when stderr is a terminal, the
 * line alone every {@link PLAIN_LINE_MS} otherwise (CI logs stay readable), nothing when `quiet`.
 */
export function showReplayProgress(out: Output, total: number | null, quiet: boolean, label = 'replay', durationS: number | null = null): ProgressDisplay {
  if (quiet) return { update: () => undefined, live: () => undefined, stop: () => undefined };
  const line = new ProgressLine(durationS);
  if (out.tty && total !== null) {
    const bar = new cliProgress.SingleBar({ format: `${label} |{bar}| {line}`, stream: process.stderr, hideCursor: true, barsize: 20 }, cliProgress.Presets.shades_classic);
    bar.start(total, 0, { line: line.text() });
    return {
      update: (p) => {
        line.update(p);
        bar.update(p.done, { line: line.text() });
      },
      live: (l) => line.live(l),
      stop: () => bar.stop(),
    };
  }
  let last = Date.now();
  return {
    update(p) {
      line.update(p);
      const now = Date.now();
      if (now - last < PLAIN_LINE_MS) return;
      last = now;
      out.err(`${label}: ${line.text()}`);
    },
    live: (l) => line.live(l),
    stop: () => undefined,
  };
}
