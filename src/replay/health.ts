import { monitorEventLoopDelay, performance, PerformanceObserver, type EventLoopUtilization } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { LoopHealthSample } from '../results/types.ts';

export type { LoopHealthSample } from '../results/types.ts';

/** A gap of the loop's ticker this much longer than its period is a stall (the loop was blocked), ms. */
export const STALL_MS = 5;
/** Resolution of `monitorEventLoopDelay`, ms. */
const RESOLUTION_MS = 1;
/** Period of the ticker that finds stalls, ms. */
const TICK_MS = 2;
/** Stall intervals kept per loop (the count and total go on beyond it). */
const MAX_STALLS = 10_000;

/**
 * Measures a sending loop while it runs: its event-loop delay (histogram), the intervals it was blocked (a ticker
 * every 2 ms; a late tick marks a stall), its utilization and the process's CPU time. `rel()` is the run's clock.
 */
export class LoopMonitor {
  private readonly histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  private ticker: NodeJS.Timeout | null = null;
  private last = 0;
  private readonly stalls: Array<[number, number]> = [];
  private stallCount = 0;
  private stalledUs = 0;
  private elu: EventLoopUtilization | null = null;
  private cpu: NodeJS.CpuUsage | null = null;
  private wall0 = 0;
  private readonly gc = { count: 0, maxMs: 0, totalMs: 0 };
  private sched0: ThreadSched | null = null;
  private gcObserver: PerformanceObserver | null = null;

  constructor(private readonly sender: number, private readonly rel: () => number) {}

  start(): void {
    this.histogram.enable();
    this.elu = performance.eventLoopUtilization();
    this.cpu = process.cpuUsage();
    this.wall0 = performance.now();
    this.sched0 = threadSched();
    this.last = this.rel();
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    // Garbage-collection pauses of this thread: the usual cause of a stall of an otherwise idle loop.
    this.gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        this.gc.count++;
        this.gc.totalMs += e.duration;
        if (e.duration > this.gc.maxMs) this.gc.maxMs = e.duration;
      }
    });
    this.gcObserver.observe({ entryTypes: ['gc'] });
  }

  private tick(): void {
    const now = this.rel();
    const gapUs = now - this.last;
    if (gapUs > (TICK_MS + STALL_MS) * 1000) {
      this.stallCount++;
      this.stalledUs += gapUs - TICK_MS * 1000;
      if (this.stalls.length < MAX_STALLS) this.stalls.push([this.last + TICK_MS * 1000, now]);
    }
    this.last = now;
  }

  stop(): LoopHealthSample {
    if (this.ticker) clearInterval(this.ticker);
    this.gcObserver?.disconnect();
    this.tick();
    this.histogram.disable();
    const h = this.histogram;
    // The histogram records the interval between its timer's runs; the delay is what exceeds the 1 ms resolution.
    const ms = (ns: number) => (Number.isFinite(ns) ? Math.max(0, Math.round((ns - RESOLUTION_MS * 1e6) / 1e3) / 1e3) : 0);
    const cpu = process.cpuUsage(this.cpu ?? undefined);
    return {
      sender: this.sender,
      loopDelayMs: h.count > 0 ? { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), mean: ms(h.mean) } : { p50: 0, p99: 0, max: 0, mean: 0 },
      stalls: this.stalls,
      stallCount: this.stallCount,
      stalledMs: Math.round(this.stalledUs / 1000),
      utilization: Math.round(performance.eventLoopUtilization(this.elu ?? undefined).utilization * 1000) / 1000,
      cpuWaitMs: cpuWaitMs(this.sched0, threadSched()),
      gcPauses: { count: this.gc.count, maxMs: Math.round(this.gc.maxMs * 100) / 100, totalMs: Math.round(this.gc.totalMs) },
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
      wallMs: Math.round(performance.now() - this.wall0),
    };
  }
}


/** What Linux counts of the calling thread (`/proc/thread-self`): ns it waited for a CPU while runnable. */
interface ThreadSched {
  waitNs: number;
}

function threadSched(): ThreadSched | null {
  try {
    const [, wait] = readFileSync('/proc/thread-self/schedstat', 'utf8').trim().split(/\s+/);
    return { waitNs: Number(wait) };
  } catch {
    return null; // not Linux, or scheduler statistics not available
  }
}

function cpuWaitMs(a: ThreadSched | null, b: ThreadSched | null): number | null {
  return a && b && Number.isFinite(a.waitNs) && Number.isFinite(b.waitNs) ? Math.round((b.waitNs - a.waitNs) / 1e5) / 10 : null;
}

let collect: (() => void) | null | undefined;

/**
 * Runs a full garbage collection now, if the runtime lets it (V8's `gc` made available at run time): called just
 * before a run's clock starts, so the garbage of start-up (module loading, planning, prefetching bodies) is not
 * collected in a pause during the run.
 */
export function settleHeap(): void {
  if (collect === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as () => void;
    } catch {
      collect = null;
    }
  }
  collect?.();
}
