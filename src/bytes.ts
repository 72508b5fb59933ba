/** Initial size of a {@link ByteCapture} without a size hint; it doubles as needed. */
const INITIAL_BYTES = 4 * 1024;

/** What a {@link ByteCapture} holds at the end: the bytes, where each chunk ended in them and when it arrived. */
export interface CapturedBytes {
  /** The captured bytes, in an ArrayBuffer of their own (transferable to another thread without a copy). */
  bytes: Uint8Array | null;
  /** Offset in `bytes` at which each captured chunk ends. */
  chunkEnds: number[];
  /** Arrival time of each captured chunk (µs, on the caller's clock); empty when times were not asked for. */
  chunkAtUs: number[];
  /** False when the stream was longer than the bound (the rest was counted, not kept). */
  complete: boolean;
}

/**
 * Copies a stream's chunks into one growing buffer, up to `maxBytes`, optionally with each chunk's arrival time: the
 * only work the loop that forwards or sends does with a body (taking bytes and timestamps); parsing happens later,
 * in another thread. Chunks are copied, so no socket read buffer is kept alive.
 */
export class ByteCapture {
  private buf: Buffer | null = null;
  private held = 0;
  private readonly ends: number[] = [];
  private readonly times: number[] = [];
  private complete = true;

  /** @param sizeHint expected total (e.g. a `content-length`), so the buffer is allocated once. */
  constructor(private readonly maxBytes: number, private readonly sizeHint = 0) {}

  /** Bytes captured so far. */
  get length(): number {
    return this.held;
  }

  /** Appends a chunk (with its arrival time, when given) unless it would pass the bound. */
  push(chunk: Uint8Array, atUs?: number): void {
    if (!this.complete) return;
    const need = this.held + chunk.length;
    if (need > this.maxBytes) {
      this.complete = false;
      return;
    }
    if (!this.buf || need > this.buf.length) {
      const first = this.sizeHint > 0 ? this.sizeHint : INITIAL_BYTES;
      const size = Math.min(this.maxBytes, Math.max(need, this.buf ? this.buf.length * 2 : first));
      const bigger = Buffer.allocUnsafeSlow(size);
      this.buf?.copy(bigger, 0, 0, this.held);
      this.buf = bigger;
    }
    this.buf.set(chunk, this.held);
    this.held = need;
    this.ends.push(need);
    if (atUs !== undefined) this.times.push(atUs);
  }

  /** Marks the capture incomplete (bytes were not offered to it). */
  truncated(): void {
    this.complete = false;
  }

  /** The capture; the buffer is handed over (do not push after this). */
  result(): CapturedBytes {
    const bytes = this.buf && this.held > 0 ? new Uint8Array(this.buf.buffer, 0, this.held) : null;
    this.buf = null;
    return { bytes, chunkEnds: this.ends, chunkAtUs: this.times, complete: this.complete };
  }
}
