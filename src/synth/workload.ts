import { synthesizeRequest } from '../protocols/index.ts';
import type { SynthOptions } from '../protocols/adapter.ts';
import type { BlockTextCache } from './text.ts';
import { isGenerative } from '../protocols/index.ts';
import type { PlannedRequest } from '../replay/types.ts';
import type { Rng } from '../rng.ts';
import type { TraceRecord } from '../types.ts';
import type { Arrival } from '../workload/types.ts';
import { requestHash, type WorkloadDigest } from './digest.ts';
import { promptLead, type HistorySpec } from './history.ts';
import { recordForTarget } from './target.ts';

export { requestHash, WorkloadDigest } from './digest.ts';
import { anomalyDrift, applyAnomaly, applyDriftToRecord } from './mutate.ts';

/** Re-keys a record's fingerprints with a salt, so a clone is not a duplicate of its original for any cache. */
function salted(r: TraceRecord, salt: string | null): TraceRecord {
  if (salt === null) return r;
  const f = r.features;
  // Prefix keys (fingerprints, or Mooncake block ids) are salted the same way; with none recorded, a salt-only prompt
  // key still makes the clone's text differ from the original's.
  const blocks = f.prefixFingerprints ?? f.prefixBlocks;
  return {
    ...r,
    features: {
      ...f,
      promptFingerprint: f.promptFingerprint ? `${f.promptFingerprint}#${salt}` : `salt#${salt}`,
      prefixFingerprints: blocks?.map((b) => `${b}#${salt}`),
      prefixBlocks: undefined,
    },
  };
}

/** The part of an arrival synthesis needs (what crosses to a synthesis thread); `history` for a follow-up turn. */
export type SynthItem = Pick<Arrival, 'seq' | 'atUs' | 'fingerprintSalt' | 'drift' | 'anomaly'> & { index: number; history?: HistorySpec };

/** Seeded streams and caches one synthesizer (one thread) uses for a whole workload. */
export interface WorkloadSynth {
  synth: Rng;
  shared: Rng;
  opts?: SynthOptions;
  blocks?: BlockTextCache;
}

/** The streams for a workload seeded with `rng` (the replay's root stream): `synth/<index>` per request, one `shared`. */
export function workloadSynth(rng: Rng, opts?: SynthOptions, blocks?: BlockTextCache): WorkloadSynth {
  return { synth: rng.child('synth'), shared: rng.child('shared'), opts, blocks };
}

/**
 * Synthesizes one request of the workload from its record: applies the target mapping (`--model`, `--path-map`), the
 * arrival's drift and fingerprint salt,
 * synthesizes the body through the protocol adapter (seeded by index, so any thread gives the same bytes) and applies
 * its anomaly.
 */
export function synthesizeItem(a: SynthItem, recorded: TraceRecord, w: WorkloadSynth, recordOf?: (seq: number) => TraceRecord): PlannedRequest {
  const base = recordForTarget(recorded, w.opts);
  const r = salted(applyDriftToRecord(base, [...a.drift, ...anomalyDrift(a.anomaly, base)]), a.fingerprintSalt);
  const h = a.history;
  const lead = h && recordOf ? promptLead(h, salted(recordForTarget(recordOf(h.rootSeq), w.opts), h.rootSalt), w.synth, w.shared, w.blocks) : undefined;
  const s = applyAnomaly(synthesizeRequest(r, w.synth.child(String(a.index)), w.shared, w.opts, w.blocks, lead), r, a.anomaly);
  return {
    index: a.index,
    traceSeq: a.seq,
    scheduledUs: a.atUs,
    method: s.method,
    path: s.path,
    headers: s.headers,
    body: s.body,
    expectedOutputTokens: r.outputTokens,
    promptTokens: r.promptTokens,
    llm: isGenerative(r.protocol),
    protocol: r.protocol,
    label: a.anomaly,
    abortAfterUs: w.opts?.clientAborts !== false && r.errorKind === 'client_aborted' && r.latencyUs !== null ? r.latencyUs : null,
    recordedFailed: recordedFailure(r),
  };
}

/**
 * Synthesizes the transformed workload lazily in this thread, one request per pull (for `plan`, which sends nothing;
 * a replay synthesizes in worker threads, see `synth/pool.ts`, with the same bytes). Feeds `digest` when given.
 */
export function* synthesizeWorkload(arrivals: readonly Arrival[], getRecord: (seq: number) => TraceRecord, rng: Rng, digest?: WorkloadDigest, opts?: SynthOptions, blocks?: BlockTextCache, histories?: ReadonlyMap<number, HistorySpec>): Generator<PlannedRequest> {
  const w = workloadSynth(rng, opts, blocks);
  for (let index = 0; index < arrivals.length; index++) {
    const a = arrivals[index]!;
    const p = synthesizeItem({ ...a, index, history: histories?.get(index) }, getRecord(a.seq), w, getRecord);
    digest?.add(p, requestHash(p));
    yield p;
  }
}

/**
 * Whether a recorded exchange failed: an error status, a transport error, or a client that gave up. An imported record
 * (no answer known) did not. Such a request is replayed as recorded but left out of goodput: it did not succeed in
 * production either, so the target cannot be blamed for it.
 */
export function recordedFailure(r: Pick<TraceRecord, 'status' | 'errorKind'>): boolean {
  return r.errorKind !== null || (r.status !== null && r.status >= 400);
}
