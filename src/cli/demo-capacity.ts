import { startSimProcess } from '../sim/process.ts';
import type { SweepResult } from '../sweep/run.ts';
import type { Output } from './output.ts';
import { runSweepCommand } from './sweep.ts';

/** The run objectives the demo's capacity is searched against: what a chat user feels first, and errors. */
export const DEMO_CAPACITY_SLO = 'ttft_p99<1s,error_rate<1%';
/** The demo's sweep: by rate from 8 req/s, 1 s warm-up + 3 s measured per step, to 20 %. */
export const DEMO_SWEEP = { startRps: 8, warmupUs: 1_000_000, stepDurationUs: 3_000_000, precision: 0.2 } as const;

/** Where the demo writes its capacity report: beside the run, `NAME-capacity.html`. */
export function capacityHtmlPath(run: string): string {
  return run.replace(/(\.run)?\.db$/, '') + '-capacity.html';
}

/**
 * The demo's last step: the capacity of a fresh `sim` (batch 64, its own process) for the recorded trace, `sweep --by rate --search`
 * against {@link DEMO_CAPACITY_SLO}, its queue scraped and drained between steps; the table goes to `out` (stderr with
 * `--json`), the HTML report beside the run.
 */
export async function demoCapacity(opts: { trace: string; run: string; seed: number }, out: Output): Promise<SweepResult> {
  // In a process of its own: at these rates an in-process sim's timers would delay the sends that measure it.
  const sim = await startSimProcess(['--seed', String(opts.seed)]);
  try {
    out.err(`demo: 6/6 the capacity of sim (batch 64) for this trace: sweep --by rate --search from ${DEMO_SWEEP.startRps} req/s against '${DEMO_CAPACITY_SLO}'`);
    const { result } = await runSweepCommand(opts.trace, {
      target: sim.url, slo: DEMO_CAPACITY_SLO, by: 'rate', search: true, start: DEMO_SWEEP.startRps, precision: DEMO_SWEEP.precision,
      stepDurationUs: DEMO_SWEEP.stepDurationUs, warmupUs: DEMO_SWEEP.warmupUs, seed: opts.seed, argv: [],
      scrape: [`${sim.url}/metrics`], scrapeIntervalMs: 250, html: capacityHtmlPath(opts.run),
    }, out);
    return result;
  } finally {
    await sim.close();
  }
}
