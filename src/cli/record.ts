import { DEFAULT_POLICY, loadPolicy } from '../anonymize/policy.ts';
import type { SessionKeySpec } from '../sessions/keys.ts';
import { startRecordingProxy, type RecordingProxy } from '../capture/proxy.ts';
import type { WriterHealth, WriterHealthEvent } from '../trace/writer.ts';
import type { ProtocolId } from '../types.ts';
import { DEFAULT_PREFIX_BLOCK_TOKENS, Fingerprinter, loadFingerprintKey } from '../anonymize/fingerprint.ts';
import { type Output, onceInterrupted, onLaterSignals, plural } from './output.ts';

/** Options of `tracewarp record`. */
export interface RecordCommandOptions {
  upstream: string;
  host: string;
  port: number;
  out: string;
  force?: boolean;
  maxCaptureBytes?: number;
  /** Captured bytes that may wait for the recorder thread (default 256 MiB). */
  maxRecordQueueBytes?: number;
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
  /** Explicit session keys (`--session-key`), first match wins. */
  sessionKeys?: SessionKeySpec[];
  /** Link requests into sessions (default true; `--no-sessions` turns it off). */
  inferSessions?: boolean;
}

/** A recording session: the proxy, with its recorder thread writing the trace. `stop` closes the file cleanly. */
export interface RecordSession {
  proxy: RecordingProxy;
  stop(cut?: AbortSignal): Promise<{ written: number; dropped: number; whole: boolean; health: WriterHealth | null; rescuedTo: string | null; rescued: number; metaWritten: boolean }>;
}

/** The line `record` prints when writing the trace changes health (each kind once per episode). */
function healthLine(e: WriterHealthEvent, path: string): string {
  switch (e.kind) {
    case 'write_failed':
      return `record: cannot write ${path} (${e.code}: ${e.message}); traffic is still forwarded, records wait in memory and are retried (then dropped and counted)`;
    case 'write_resumed':
      return `record: writing ${path} again after ${(e.afterMs / 1000).toFixed(1)} s${e.dropped > 0 ? ` (${e.dropped} records dropped meanwhile)` : ''}`;
    case 'file_recreated':
      return `record: ${path} was ${e.reason}; made it again from the open trace, nothing lost`;
    case 'recorder_stopped':
      return `record: the recorder thread stopped (${e.message}); traffic is still forwarded, exchanges are counted but not recorded`;
  }
}

/** Starts the proxy and its recorder thread (which creates the trace file) and prints the `listening on` line. */
export async function startRecord(opts: RecordCommandOptions, out: Output): Promise<RecordSession> {
  if (opts.captureRaw) {
    out.err('WARNING: --capture-raw: raw request URLs, headers (credentials included) and bodies will be written to');
    out.err(`WARNING: ${opts.out}. Treat the file as secret; do not share it. The trace's metadata records capture_raw=true.`);
  }
  const policy = opts.policyFile ? loadPolicy(opts.policyFile) : DEFAULT_POLICY;
  const { key, origin } = loadFingerprintKey(opts.fingerprintKeyFile);
  const fingerprinter = new Fingerprinter(key, opts.prefixBlockTokens ?? DEFAULT_PREFIX_BLOCK_TOKENS);
  const proxy = await startRecordingProxy({
    fingerprint: { key, blockTokens: fingerprinter.blockTokens },
    policy,
    protocol: opts.protocol,
    sessionKeys: opts.sessionKeys,
    inferSessions: opts.inferSessions,
    upstream: opts.upstream,
    host: opts.host,
    port: opts.port,
    maxCaptureBytes: opts.maxCaptureBytes,
    maxRecordQueueBytes: opts.maxRecordQueueBytes,
    headersTimeoutMs: opts.headersTimeoutMs,
    idleTimeoutMs: opts.idleTimeoutMs,
    captureRaw: opts.captureRaw,
    trace: {
      path: opts.out,
      overwrite: opts.force,
      anonymization: policy.describe(),
      meta: {
        ...(opts.captureRaw ? { capture_raw: true } : {}),
        // The key itself is never written: only where it came from and the block size.
        fingerprints: { algorithm: 'HMAC-SHA256, first 64 bits', key: origin, prefix_block_tokens: fingerprinter.blockTokens },
      },
    },
    onRecorderHealth: (e) => out.err(healthLine(e, opts.out)),
  });
  out.out(`tracewarp record listening on ${proxy.url} → ${withoutCredentials(opts.upstream)}, writing ${opts.out}`);
  return {
    proxy,
    async stop(cut?: AbortSignal) {
      const s = await proxy.close(opts.graceMs ?? 10_000, cut);
      return { written: s.written ?? 0, dropped: s.dropped ?? s.droppedQueueFull, whole: s.whole ?? false, health: s.health ?? null, rescuedTo: s.rescuedTo ?? null, rescued: s.rescued ?? 0, metaWritten: s.metaWritten ?? false };
    },
  };
}

/**
 * `tracewarp record`: records until SIGINT or SIGTERM — or, run through npm (`npx tracewarp record`), until the npm
 * process that launched it goes away, which is how a SIGTERM sent to `npx` shows (see `LAUNCHER_POLL_MS`) — then
 * closes the trace cleanly; a second signal cuts what is still in flight.
 */
export async function runRecord(opts: RecordCommandOptions, out: Output): Promise<number> {
  const interrupted = onceInterrupted({ launcher: true });
  const session = await startRecord(opts, out);
  const stop = await interrupted.promise;
  const queued = session.proxy.recorder.stats().queued;
  const graceS = Math.round((opts.graceMs ?? 10_000) / 100) / 10;
  out.err(`record: ${stop.text}: no longer accepting; finishing ${plural(session.proxy.inFlight(), 'exchange')} in flight for up to ${graceS} s (Ctrl-C again to cut them)${queued > 0 ? `; ${plural(queued, 'finished exchange')} still to describe and write` : ''}…`);
  // A second signal cuts what is still in flight (recorded as proxy_shutdown); the trace is still written and closed
  // whole, so further signals only say so.
  const cut = new AbortController();
  const offSignals = onLaterSignals(stop, () => {
    if (!cut.signal.aborted) out.err(`record: cutting ${plural(session.proxy.inFlight(), 'exchange')} still in flight; writing the trace…`);
    else out.err('record: still writing the trace; it will be complete in a moment');
    cut.abort();
  });
  let result: Awaited<ReturnType<RecordSession['stop']>>;
  try {
    result = await session.stop(cut.signal);
  } finally {
    offSignals();
  }
  const { written, dropped, whole, rescuedTo, rescued, metaWritten } = result;
  // Each line says only what is true of the file: its meta may not have been writable either.
  const says = metaWritten ? "the trace's meta.records_dropped says so" : 'the trace file could not be written at the end, so it does not say so itself';
  out.out(`recorded ${plural(written, 'exchange')} to ${opts.out}${dropped > 0 ? ` (${dropped} not recorded: the recorder fell behind or could not write; ${says})` : ''}`);
  if (rescuedTo) out.err(`record: ${opts.out} could not be written at the end; ${plural(rescued, 'exchange')} ${rescued === 1 ? 'was' : 'were'} written to ${rescuedTo} instead (a trace of its own; keep it with the trace)`);
  if (dropped > 0) out.err(`record: ${dropped} exchanges were forwarded but not recorded`);
  if (!metaWritten && dropped === 0 && !rescuedTo) out.err(`record: ${opts.out}'s meta could not be written at the end; its records are complete, its recording health is not stored`);
  if (!whole) out.err(`record: ${opts.out} could not be closed as a single file; its committed records are in ${opts.out}-wal beside it (keep both files together)`);
  return 0;
}

/** A URL as it may be printed: a user name and password in it (`http://user:pass@host`) are replaced by `***`. */
function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = '***';
    u.password = '';
    return u.toString();
  } catch {
    return url;
  }
}
