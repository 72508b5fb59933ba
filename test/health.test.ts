import { describe, expect, it } from 'vitest';
import { assessHealth, markStalls } from '../src/metrics/health.ts';
import type { LoopHealthSample, RequestResult } from '../src/results/types.ts';

/** A result with the given times (µs from the run start). */
function result(index: number, t: { scheduledUs: number; sentUs: number; ttftAtUs?: number | null; endUs: number }): RequestResult {
  return {
    index, traceSeq: index, scheduledUs: t.scheduledUs, sentUs: t.sentUs, ttfbAtUs: t.sentUs + 100, ttftAtUs: t.ttftAtUs ?? null, endUs: t.endUs,
    status: 200, errorKind: null, requestBytes: 10, responseBytes: 10, streamed: t.ttftAtUs != null, eventCount: 0, outputTokens: null,
    expectedOutputTokens: null, promptTokens: null, capDelayed: false, label: null, sender: 0,
  };
}

function sample(stalls: Array<[number, number]>): LoopHealthSample {
  return {
    sender: 0, loopDelayMs: { p50: 0, p99: 0.5, max: 10, mean: 0 }, stalls, stallCount: stalls.length, stalledMs: 0, cpuWaitMs: 12, gcPauses: { count: 0, maxMs: 0, totalMs: 0 },
    utilization: 0.1, cpuMs: 100, wallMs: 1000,
  };
}

describe('stall marks (pure)', () => {
  // One 8 ms stall from 100 ms to 108 ms of the run.
  const stalls: Array<[number, number]> = [[100_000, 108_000]];

  it("a stall that may move a short request's figures by more than the bound and 1 % marks it; one inside a long stream does not", () => {
    const rs = [
      result(0, { scheduledUs: 90_000, sentUs: 90_050, endUs: 107_500 }), // 17.5 ms, ends in the stall: marked
      result(1, { scheduledUs: 0, sentUs: 50, ttftAtUs: 104_000, endUs: 2_000_000 }), // 2 s stream, TTFT in the stall: 8 ms < 1 %
      result(2, { scheduledUs: 102_000, sentUs: 108_300, endUs: 109_000 }), // due in the stall, sent after: held, marked
      result(3, { scheduledUs: 200_000, sentUs: 200_050, endUs: 210_000 }), // after it: not marked
      result(4, { scheduledUs: 0, sentUs: 50, ttftAtUs: 50_000, endUs: 400_000 }), // stall mid-stream, no figure stamped in it
    ];
    markStalls(rs, [sample(stalls)]);
    expect(rs.map((r) => Boolean(r.toolStall))).toEqual([true, false, true, false, false]);
  });

  it('the advice fits the machine: another loop only where a core is free for it', () => {
    const rs = Array.from({ length: 10 }, (_, i) => ({ ...result(i, { scheduledUs: i * 1000, sentUs: i * 1000 + 50_000, endUs: i * 1000 + 60_000 }), toolStall: true }));
    const synthesis = { threads: 1, synthesized: 10, promptTokens: 0, busyMs: 0, cacheHitTokens: 0, cacheMissTokens: 0, peakReadyBytes: 0 };
    const two = assessHealth([sample(stalls)], rs, synthesis, { cores: 2 });
    expect(two.verdict).toBe('distorted');
    expect(two.fix).not.toMatch(/--workers/);
    expect(two.fix).toMatch(/^Replay at a lower --speed, or run where nothing else competes for the CPU \(the sending loop waited 12 ms for a CPU\)$/);
    expect(assessHealth([sample(stalls)], rs, synthesis, { cores: 8 }).fix).toMatch(/^Spread the sending over another loop \(--workers 2\)/);
    const crowded = assessHealth([sample(stalls), { ...sample(stalls), sender: 1 }], rs, { ...synthesis, threads: 2 }, { cores: 2 });
    expect(crowded.fix).toMatch(/^2 sending loops and 2 synthesis threads compete for 2 cores: use fewer/);
  });
});
