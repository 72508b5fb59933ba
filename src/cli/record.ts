import { DEFAULT_POLICY } from '../anonymize/skeleton.ts';
import { startRecordingProxy, type RecordingProxy } from '../capture/proxy.ts';
import { TraceWriter } from '../trace/writer.ts';
import { type Output, onceInterrupted } from './output.ts';

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
}

/** A recording session: the proxy plus its trace writer. `stop` flushes and closes the file cleanly. */
export interface RecordSession {
  proxy: RecordingProxy;
  writer: TraceWriter;
  stop(): Promise<{ written: number; dropped: number }>;
}

/** Starts the proxy and the trace writer and prints the `listening on` line. */
export async function startRecord(opts: RecordCommandOptions, out: Output): Promise<RecordSession> {
  let writer: TraceWriter | null = null;
  const pending: Parameters<TraceWriter['add']>[0][] = [];
  const proxy = await startRecordingProxy({
    upstream: opts.upstream,
    host: opts.host,
    port: opts.port,
    maxCaptureBytes: opts.maxCaptureBytes,
    headersTimeoutMs: opts.headersTimeoutMs,
    idleTimeoutMs: opts.idleTimeoutMs,
    onRecord: (r) => (writer ? writer.add(r) : pending.push(r)),
  });
  try {
    writer = new TraceWriter(opts.out, {
      source: 'capture', anchorWallUs: proxy.startWallUs, anonymization: DEFAULT_POLICY, overwrite: opts.force, flushIntervalMs: 100,
    });
  } catch (err) {
    await proxy.close(0);
    throw err;
  }
  for (const r of pending) writer.add(r);
  const w = writer;
  out.out(`tracewarp record listening on ${proxy.url} → ${opts.upstream}, writing ${opts.out}`);
  return {
    proxy,
    writer: w,
    async stop() {
      await proxy.close(opts.graceMs ?? 10_000);
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
  out.err(`record: ${sig}: no longer accepting; finishing ${session.proxy.inFlight()} exchanges in flight…`);
  const { written, dropped } = await session.stop();
  out.out(`recorded ${written} exchanges to ${opts.out}${dropped > 0 ? ` (${dropped} records dropped: the writer fell behind)` : ''}`);
  return 0;
}
