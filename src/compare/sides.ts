import { TracewarpError } from '../errors.ts';
import { readRunFile } from '../results/run-file.ts';
import { completed } from '../results/types.ts';
import { recordedFailure } from '../synth/workload.ts';
import { TraceReader } from '../trace/reader.ts';

/** One request's figures on one side of a comparison, ms from the request's send (a trace: from its arrival at the proxy). */
export interface RequestFigures {
  latencyMs: number | null;
  ttftMs: number | null;
  ttfbMs: number | null;
  tpotMs: number | null;
  /** Did not complete: a transport error, no answer, an HTTP status ≥ 400. */
  failed: boolean;
}

/** One side of a comparison: a run file, or a captured trace (today's production as recorded). */
export interface Side {
  kind: 'run' | 'trace';
  path: string;
  /** The workload digest of a complete run (null for a trace or an interrupted run). */
  digest: string | null;
  /** The trace a run replayed (for a trace, itself). */
  tracePath: string;
  /** By result index (a run), and by the recorded request it came from (`trace:<seq>`: a trace, and each run's first copy of a request). */
  requests: Map<string, RequestFigures>;
}

const ms = (us: number | null) => (us === null ? null : us / 1000);

/**
 * Reads a side from a run file or a trace file (told apart by their `meta.format`).
 * @throws TracewarpError `TW_USAGE` for an imported trace (it holds no answers to compare), `TW_RUN_INVALID` or a
 *   trace error code for a file that is neither.
 */
export function readSide(path: string): Side {
  try {
    return runSide(path);
  } catch (err) {
    if (!(err instanceof TracewarpError) || !/but a trace/.test(err.message)) throw err;
  }
  return traceSide(path);
}

function runSide(path: string): Side {
  const { meta, results } = readRunFile(path);
  const requests = new Map<string, RequestFigures>();
  for (const r of results) {
    const done = completed(r) && r.sentUs !== null;
    const f: RequestFigures = {
      latencyMs: done ? ms(r.endUs! - r.sentUs!) : null,
      ttftMs: done && r.streamed && r.ttftAtUs !== null ? ms(r.ttftAtUs - r.sentUs!) : null,
      ttfbMs: done && r.ttfbAtUs !== null ? ms(r.ttfbAtUs - r.sentUs!) : null,
      tpotMs: done && r.streamed && r.ttftAtUs !== null && r.outputTokens !== null && r.outputTokens > 1 ? ms((r.endUs! - r.ttftAtUs) / (r.outputTokens - 1)) : null,
      failed: !done,
    };
    requests.set(`run:${r.index}`, f);
    if (!requests.has(`trace:${r.traceSeq}`)) requests.set(`trace:${r.traceSeq}`, f);
  }
  const digest = meta.digest && meta.interrupted !== true ? (meta.digest as { digest?: string }).digest ?? null : null;
  return { kind: 'run', path, digest, tracePath: String(meta.tracePath ?? ''), requests };
}

function traceSide(path: string): Side {
  const reader = new TraceReader(path);
  try {
    if (reader.meta.source !== 'capture') throw new TracewarpError('TW_USAGE', `${path}: an imported trace (${reader.meta.source}) holds no answers to compare with; record one through the proxy, or compare two runs`);
    const requests = new Map<string, RequestFigures>();
    for (const r of reader.records()) {
      if (r.protocol === 'websocket') continue;
      const failed = recordedFailure(r) || r.latencyUs === null;
      requests.set(`trace:${r.seq}`, {
        latencyMs: failed ? null : ms(r.latencyUs),
        ttftMs: failed || !r.streamed ? null : ms(r.ttftUs),
        ttfbMs: failed ? null : ms(r.ttfbUs),
        tpotMs: !failed && r.streamed && r.ttftUs !== null && r.latencyUs !== null && r.outputTokens !== null && r.outputTokens > 1 ? ms((r.latencyUs - r.ttftUs) / (r.outputTokens - 1)) : null,
        failed,
      });
    }
    return { kind: 'trace', path, digest: null, tracePath: path, requests };
  } finally {
    reader.close();
  }
}
