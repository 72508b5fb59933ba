/**
 * The timing model of `tracewarp sim`: a continuous-batching LLM engine in the style of vLLM/TGI schedulers.
 *
 * - At most `maxBatch` sequences run together; the rest wait in a FIFO queue.
 * - Each engine step emits one token for every running sequence. A step takes
 *   `decodeStepMs + perSeqStepMs × (running − 1)` ms, plus `prefillUsPerToken × prompt tokens` for sequences admitted
 *   in that step (their prefill runs inside the step, which then emits their first token), so steps slow down as more
 *   sequences share them and long prompts delay everyone's next token, as on real servers.
 * - A bounded KV cache (`kvCacheTokens`, 0 for none): a waiting sequence is admitted only when its prompt (and what
 *   it generated before a preemption) fits beside the running ones; when the running sequences' growth overflows it,
 *   the most recently admitted one is preempted (vLLM's recompute preemption: it goes back to the head of the queue,
 *   keeps the tokens it generated, and pays their prefill again when readmitted).
 * - Steps are scheduled on absolute monotonic times (no drift from timer jitter); a step that starts late after a
 *   stall is late, and the next ones keep their full length (no catch-up bursts).
 */
export interface EngineTiming {
  /** Prefill cost per prompt token, µs. Default 40 (a 1,000-token prompt adds 40 ms). */
  prefillUsPerToken: number;
  /** Duration of a decode step with one running sequence, ms. Default 8 (125 tokens/s for a lone request). */
  decodeStepMs: number;
  /** Extra step time per additional running sequence, ms. Default 0.15. */
  perSeqStepMs: number;
  /** Continuous-batching limit B: sequences that run together. Default 64. */
  maxBatch: number;
  /** KV-cache budget in tokens (prompts plus generated tokens of the running sequences); 0: unbounded. Default 0. */
  kvCacheTokens: number;
  /** Model load: nothing runs for this long after the engine starts (requests queue meanwhile), ms. Default 0. */
  modelLoadMs: number;
}

export const DEFAULT_TIMING: EngineTiming = { prefillUsPerToken: 40, decodeStepMs: 8, perSeqStepMs: 0.15, maxBatch: 64, kvCacheTokens: 0, modelLoadMs: 0 };

/** One generation request inside the engine. */
export interface Sequence {
  promptTokens: number;
  /** Prompt tokens found in the prefix cache at admission (their prefill is skipped). Default 0. */
  cachedTokens?: number;
  /** Tokens to generate (≥ 1). */
  targetTokens: number;
  generated: number;
  /** Called once when the sequence is admitted (prefill starts). */
  onStart(): void;
  /** Called for each generated token (index from 0). */
  onToken(index: number): void;
  /** Called once when the last token has been emitted. */
  onDone(): void;
}

/** What the engine has done so far (sim's `/metrics` counters). */
export interface EngineCounters {
  /** Prompt and generated tokens of finished sequences, and the sequences finished. */
  promptTokens: number;
  generationTokens: number;
  finished: number;
  /** Sequences preempted because the KV cache was full. */
  preemptions: number;
}

export class Engine {
  readonly counters: EngineCounters = { promptTokens: 0, generationTokens: 0, finished: 0, preemptions: 0 };
  private readonly started = new WeakSet<Sequence>();
  /** Called with each sequence's time to first token (from `submit` to its first token), seconds. */
  onFirstToken: ((seconds: number) => void) | null = null;
  private readonly submittedAtMs = new WeakMap<Sequence, number>();
  private readonly waiting: Sequence[] = [];
  private running: Sequence[] = [];
  private timer: NodeJS.Timeout | null = null;
  private nextStepAtMs = 0;
  private stopped = false;

  private readonly readyAtMs: number;

  constructor(readonly timing: EngineTiming) {
    this.readyAtMs = performance.now() + timing.modelLoadMs;
  }

  /** Sequences waiting for a batch slot and running now. */
  load(): { waiting: number; running: number } {
    return { waiting: this.waiting.length, running: this.running.length };
  }

  /** Tokens the running sequences hold in the KV cache: their prompts and what they generated so far. */
  kvTokens(): number {
    return this.running.reduce((a, s) => a + s.promptTokens + s.generated, 0);
  }

  submit(seq: Sequence): void {
    this.submittedAtMs.set(seq, performance.now());
    this.waiting.push(seq);
    if (this.timer || this.stopped) return;
    const loadingMs = this.readyAtMs - performance.now();
    if (loadingMs <= 0) this.scheduleStep(performance.now());
    else this.timer = setTimeout(() => this.scheduleStep(performance.now()), loadingMs);
  }

  /** Removes a sequence (client went away). */
  cancel(seq: Sequence): void {
    const w = this.waiting.indexOf(seq);
    if (w >= 0) this.waiting.splice(w, 1);
    this.running = this.running.filter((s) => s !== seq);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Whether a waiting sequence fits the KV cache beside `held` tokens (always, with nothing running: no deadlock). */
  private fits(s: Sequence, held: number, running: number): boolean {
    const budget = this.timing.kvCacheTokens;
    return budget <= 0 || running === 0 || held + s.promptTokens + s.generated + 1 <= budget;
  }

  private scheduleStep(startMs: number): void {
    const admitted: Sequence[] = [];
    let held = this.kvTokens();
    while (this.running.length + admitted.length < this.timing.maxBatch && this.waiting.length > 0 && this.fits(this.waiting[0]!, held, this.running.length + admitted.length)) {
      const s = this.waiting.shift()!;
      held += s.promptTokens + s.generated;
      admitted.push(s);
    }
    const batch = this.running.length + admitted.length;
    if (batch === 0) {
      this.timer = null;
      return;
    }
    const first = new Set<Sequence>();
    for (const s of admitted) {
      if (!this.started.has(s)) {
        first.add(s);
        s.onStart();
      }
      this.started.add(s);
    }
    this.running.push(...admitted);
    // A preempted sequence recomputes what it had: its prompt and the tokens it generated.
    // Cached prompt tokens are not computed again (a preempted sequence lost its blocks and recomputes them all).
    const prefillMs = admitted.reduce((a, s) => a + s.promptTokens - (first.has(s) ? s.cachedTokens ?? 0 : 0) + s.generated, 0) * this.timing.prefillUsPerToken / 1000;
    const stepMs = this.timing.decodeStepMs + this.timing.perSeqStepMs * (batch - 1) + prefillMs;
    this.nextStepAtMs = startMs + stepMs;
    this.timer = setTimeout(() => this.endStep(), Math.max(0, this.nextStepAtMs - performance.now()));
  }

  /** While the running sequences overflow the KV cache, the most recently admitted goes back to the queue's head. */
  private preemptOverflow(): void {
    const budget = this.timing.kvCacheTokens;
    while (budget > 0 && this.running.length > 1 && this.kvTokens() > budget) {
      this.waiting.unshift(this.running.pop()!);
      this.counters.preemptions++;
    }
  }

  private endStep(): void {
    const stepEnd = this.nextStepAtMs;
    const still: Sequence[] = [];
    for (const s of this.running) {
      if (s.generated === 0 && this.onFirstToken) this.onFirstToken((stepEnd - (this.submittedAtMs.get(s) ?? stepEnd)) / 1000);
      s.onToken(s.generated);
      s.generated++;
      if (s.generated >= s.targetTokens) {
        this.counters.finished++;
        this.counters.promptTokens += s.promptTokens;
        this.counters.generationTokens += s.generated;
        s.onDone();
      } else still.push(s);
    }
    this.running = still;
    this.preemptOverflow();
    if (this.stopped) return;
    // Keep absolute time through timer jitter (≤ 1 ms late); after a longer stall start the next step now, as a real
    // engine would: a late step is late, the following ones are not squeezed to catch up (that sent tokens in bursts).
    const now = performance.now();
    this.scheduleStep(now - stepEnd > 1 ? now : stepEnd);
  }
}
