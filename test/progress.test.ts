import { describe, expect, it } from 'vitest';
import { ProgressLine } from '../src/cli/progress.ts';
import { LiveWindow } from '../src/results/live.ts';
import type { RequestResult } from '../src/results/types.ts';

// Issue 11, live progress: elapsed of the schedule's length, current vs scheduled rate, in flight, errors, running
// p99s. Pure logic with a fake clock; the results thread's window is fed real result shapes.

const snap = (scheduled: number, sent: number, done: number, inFlight: number, errors = 0) => ({ total: 100, scheduled, sent, done, inFlight, errors });

function result(endUs: number, latencyUs: number, ttftUs: number | null, status = 200): RequestResult {
  return {
    index: 0, traceSeq: 0, scheduledUs: endUs - latencyUs, sentUs: endUs - latencyUs, ttfbAtUs: null, ttftAtUs: ttftUs === null ? null : endUs - latencyUs + ttftUs,
    endUs, status, errorKind: null, requestBytes: 1, responseBytes: 1, streamed: ttftUs !== null, eventCount: 0, outputTokens: null,
    expectedOutputTokens: null, promptTokens: null, capDelayed: false, label: null,
  };
}

describe('live progress', () => {
  it('says elapsed of the total, the sent rate against the scheduled rate over the last 5 s, and the running p99s', () => {
    let now = 1_000;
    const line = new ProgressLine(30, () => now);
    expect(line.text()).toBe('starting');
    line.update(snap(1, 1, 0, 1));
    now += 2_000;
    line.update(snap(21, 11, 5, 6, 1));
    expect(line.rates()).toEqual({ scheduled: 10, sent: 5 });
    line.live({ completed: 5, errors: 1, latencyP99Ms: 812.25, ttftP99Ms: 41.04 });
    expect(line.text()).toBe('2/30 s · 5/100 done · 5.0 req/s sent (scheduled 10.0) · 6 in flight · 1 error · p99 812 ms, TTFT p99 41.0 ms (last 10 s)');
    // Snapshots older than the window no longer count.
    now += 10_000;
    line.update(snap(41, 41, 40, 1));
    now += 1_000;
    line.update(snap(51, 51, 50, 1));
    expect(line.rates()).toEqual({ scheduled: 10, sent: 10 });
  });

  it('the running p99 is over the answers that ended in the last 10 s, TTFT over streamed ones only', () => {
    const w = new LiveWindow();
    w.add(result(1_000_000, 900_000, 50_000)); // ends at 1 s: out of the window once an answer ends after 11 s
    for (let i = 0; i < 99; i++) w.add(result(12_000_000 + i, 100_000, null));
    w.add(result(12_500_000, 200_000, 30_000));
    w.add(result(12_600_000, 10_000, null, 503));
    const f = w.figures();
    expect(f).toEqual({ completed: 101, errors: 1, latencyP99Ms: 100, ttftP99Ms: 30 });
  });
});
