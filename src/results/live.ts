import { nearestRank } from '../metrics/exact.ts';
import { LIVE_WINDOW_S, type LiveFigures } from './collector.ts';
import { completed, type RequestResult } from './types.ts';

/**
 * The running figures of a replay for its progress line: counts, and latency and TTFT p99 over the answers that ended
 * in the last {@link LIVE_WINDOW_S} seconds (µs on the run's clock). Fed in the results thread.
 */
export class LiveWindow {
  private done = 0;
  private failed = 0;
  private recent: Array<{ endUs: number; latencyUs: number; ttftUs: number | null }> = [];

  add(r: RequestResult): void {
    if (!completed(r)) {
      this.failed++;
      return;
    }
    this.done++;
    this.recent.push({ endUs: r.endUs!, latencyUs: r.endUs! - r.sentUs!, ttftUs: r.streamed && r.ttftAtUs !== null ? r.ttftAtUs - r.sentUs! : null });
  }

  figures(): LiveFigures {
    const last = this.recent.reduce((a, x) => Math.max(a, x.endUs), -Infinity);
    this.recent = this.recent.filter((x) => x.endUs > last - LIVE_WINDOW_S * 1e6);
    const p99 = (v: number[]) => (v.length > 0 ? Math.round(nearestRank(Float64Array.from(v).sort(), 0.99)) / 1000 : null);
    return {
      completed: this.done, errors: this.failed,
      latencyP99Ms: p99(this.recent.map((x) => x.latencyUs)),
      ttftP99Ms: p99(this.recent.flatMap((x) => (x.ttftUs !== null ? [x.ttftUs] : []))),
    };
  }
}
