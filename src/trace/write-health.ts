/** First wait before writing again after a failure, ms; it doubles up to {@link MAX_RETRY_MS}. */
const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 5000;

/** A change in a writer's health. */
export type WriterHealthEvent =
  | { kind: 'write_failed'; code: string; message: string }
  | { kind: 'write_resumed'; afterMs: number; dropped: number }
  | { kind: 'file_recreated'; reason: string }
  | { kind: 'recorder_stopped'; message: string };

/** How writing went, as `meta.recording_health` keeps it. */
export interface WriterHealth {
  ok: boolean;
  writeFailures: number;
  firstFailure: { code: string; message: string; at: string } | null;
  lastFailure: { code: string; message: string; at: string } | null;
  recordsDropped: number;
  fileRecreated: number;
}

/**
 * The failures of a file writer and when to try again: an episode of failures starts with one `write_failed` event and
 * ends with one `write_resumed` (how long it lasted, records dropped meanwhile); attempts in between wait 100 ms,
 * doubling to 5 s. Time comes from `now()` (ms).
 */
export class WriteRetry {
  private failingSince: number | null = null;
  private retryMs = FIRST_RETRY_MS;
  private nextAttempt = 0;
  private droppedAtFailure = 0;
  readonly health: Omit<WriterHealth, 'ok' | 'recordsDropped'> = { writeFailures: 0, firstFailure: null, lastFailure: null, fileRecreated: 0 };

  constructor(private readonly onEvent?: (e: WriterHealthEvent) => void, private readonly now: () => number = Date.now) {}

  /** False while a failed write's backoff lasts. */
  mayAttempt(): boolean {
    return this.failingSince === null || this.now() >= this.nextAttempt;
  }

  /** A write failed with `err`; `dropped` is the writer's drop count now. */
  failed(err: unknown, dropped: number): void {
    const e = err as { code?: string; message?: string };
    const failure = { code: e?.code ?? 'ERROR', message: String(e?.message ?? err).split('\n')[0]!, at: new Date(this.now()).toISOString() };
    this.health.writeFailures++;
    this.health.firstFailure ??= failure;
    this.health.lastFailure = failure;
    if (this.failingSince === null) {
      this.failingSince = this.now();
      this.droppedAtFailure = dropped;
      this.onEvent?.({ kind: 'write_failed', code: failure.code, message: failure.message });
    } else {
      this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs * 2);
    }
    this.nextAttempt = this.now() + this.retryMs;
  }

  /** A write succeeded; ends a failure episode if one was going on. */
  succeeded(dropped: number): void {
    if (this.failingSince === null) return;
    this.onEvent?.({ kind: 'write_resumed', afterMs: this.now() - this.failingSince, dropped: dropped - this.droppedAtFailure });
    this.failingSince = null;
    this.retryMs = FIRST_RETRY_MS;
  }

  /** The file had to be made again at its path. */
  recreated(reason: string): void {
    this.health.fileRecreated++;
    this.onEvent?.({ kind: 'file_recreated', reason });
  }
}
