import { DEFAULT_POLICY, loadPolicy } from '../anonymize/policy.ts';
import { startRecordingProxy, type RecordingProxy } from '../capture/proxy.ts';
import type { RawRequest } from '../capture/exchange.ts';
import { TraceWriter } from '../trace/writer.ts';
import type { ProtocolId, TraceRecord } from '../types.ts';
import { DEFAULT_PREFIX_BLOCK_TOKENS, Fingerprinter, loadFingerprintKey } from '../anonymize/fingerprint.ts';
import { type Output, onceInterrupted, plural } from './output.ts';

/** Options of `tracewarp record`. */
export interface RecordCommandOptions {
  upstream: string;
  host: string;
  port: number;
  out: string;
  force?: boolean;
  maxCaptureBytes?: number;
  headersTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** Grace period for in-flight exchanges on shutdown, ms. Default 10,000. */
  graceMs?: number;
  /** Store raw requests (URL, headers, bodies) too. Explicit opt-in; the trace's metadata then says so. */
  captureRaw?: boolean;
  /** File whose bytes are the fingerprint key (else `TRACEWARP_FINGERPRINT_KEY`, else a random per-trace key). */
  fingerprintKeyFile?: string;
  /** Tokens per fingerprinted prefix block. Default 64. */
  prefixBlockTokens?: number;
  /** Force one protocol adapter for every request. */
  protocol?: ProtocolId;
  /** Anonymization policy file (YAML or JSON); validated before anything starts. */
  policyFile?: string;
}

/** A recording session: the proxy plus its trace writer. `stop` flushes and closes the file cleanly. */
export interface RecordSession {
  proxy: RecordingProxy;
  writer: TraceWriter;
  stop(cut?: AbortSignal): Promise<{ written: number; dropped: number }>;
}

/** Starts the proxy and the trace writer and prints the `listening on` line. */
export async function startRecord(opts: RecordCommandOptions, out: Output): Promise<RecordSession> {
  let writer: TraceWriter | null = null;
  const pending: Array<[TraceRecord, RawRequest | undefined]> = [];
  if (opts.captureRaw) {
    out.err('WARNING: --capture-raw: raw request URLs, headers (credentials included) and bodies will be written to');
    out.err(`WARNING: ${opts.out}. Treat the file as secret; do not share it. The trace's metadata records capture_raw=true.`);
  }
  const policy = opts.policyFile ? loadPolicy(opts.policyFile) : DEFAULT_POLICY;
  const { key, origin } = loadFingerprintKey(opts.fingerprintKeyFile);
  const fingerprinter = new Fingerprinter(key, opts.prefixBlockTokens ?? DEFAULT_PREFIX_BLOCK_TOKENS);
  const proxy = await startRecordingProxy({
    fingerprinter,
    policy,
    protocol: opts.protocol,
    upstream: opts.upstream,
    host: opts.host,
    port: opts.port,
    maxCaptureBytes: opts.maxCaptureBytes,
    headersTimeoutMs: opts.headersTimeoutMs,
    idleTimeoutMs: opts.idleTimeoutMs,
    captureRaw: opts.captureRaw,
    onRecord: (r, raw) => {
      if (!writer) {
        pending.push([r, raw]);
        return;
      }
      writer.add(r);
      if (raw) writer.addRaw(r.seq, raw);
    },
  });
  try {
    writer = new TraceWriter(opts.out, {
      source: 'capture', anchorWallUs: proxy.startWallUs, anonymization: policy.describe(), overwrite: opts.force, flushIntervalMs: 100,
    });
  } catch (err) {
    await proxy.close(0);
    throw err;
  }
  for (const [r, raw] of pending) {
    writer.add(r);
    if (raw) writer.addRaw(r.seq, raw);
  }
  if (opts.captureRaw) writer.setMeta('capture_raw', true);
  // The key itself is never written: only where it came from and the block size.
  writer.setMeta('fingerprints', { algorithm: 'HMAC-SHA256, first 64 bits', key: origin, prefix_block_tokens: fingerprinter.blockTokens });
  const w = writer;
  out.out(`tracewarp record listening on ${proxy.url} → ${opts.upstream}, writing ${opts.out}`);
  return {
    proxy,
    writer: w,
    async stop(cut?: AbortSignal) {
      await proxy.close(opts.graceMs ?? 10_000, cut);
      const stats = w.stats;
      w.close();
      return { written: stats.written + stats.queued, dropped: stats.dropped };
    },
  };
}

/** `tracewarp record`: records until SIGINT/SIGTERM, then closes the trace cleanly. */
export async function runRecord(opts: RecordCommandOptions, out: Output): Promise<number> {
  const interrupted = onceInterrupted();
  const session = await startRecord(opts, out);
  const sig = await interrupted.promise;
  out.err(`record: ${sig}: no longer accepting; finishing ${plural(session.proxy.inFlight(), 'exchange')} in flight (Ctrl-C again to cut them)…`);
  // A second signal cuts what is still in flight (recorded as proxy_shutdown); the trace is still written and closed
  // whole, so further signals only say so.
  const cut = new AbortController();
  const onSignal = () => {
    if (!cut.signal.aborted) out.err(`record: cutting ${plural(session.proxy.inFlight(), 'exchange')} still in flight; writing the trace…`);
    else out.err('record: still writing the trace; it will be complete in a moment');
    cut.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let result: { written: number; dropped: number };
  try {
    result = await session.stop(cut.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const { written, dropped } = result;
  out.out(`recorded ${plural(written, 'exchange')} to ${opts.out}${dropped > 0 ? ` (${dropped} records dropped: the writer fell behind)` : ''}`);
  return 0;
}
