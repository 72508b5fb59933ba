import { createHash } from 'node:crypto';
import { synthesizeRequest } from '../protocols/index.ts';
import type { SynthOptions } from '../protocols/adapter.ts';
import { isGenerative } from '../protocols/openai.ts';
import type { PlannedRequest } from '../replay/engine.ts';
import type { Rng } from '../rng.ts';
import type { TraceRecord } from '../types.ts';
import type { Arrival } from '../workload/types.ts';
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

/** Running digests of what a workload sends: the schedule alone, and schedule plus every request byte. */
export class WorkloadDigest {
  private readonly schedule = createHash('sha256');
  private readonly all = createHash('sha256');
  count = 0;

  add(p: PlannedRequest): void {
    const line = `${p.index}|${p.scheduledUs}|${p.method}|${p.path}|${p.label ?? ''}\n`;
    this.schedule.update(line);
    this.all.update(line);
    this.all.update(JSON.stringify(Object.entries(p.headers).sort()));
    this.all.update(p.body ?? Buffer.alloc(0));
    this.count++;
  }

  /** `{ schedule, digest }` as hex: `digest` covers the schedule and the bodies. Call once, at the end. */
  result(): { schedule: string; digest: string } {
    return { schedule: this.schedule.digest('hex').slice(0, 32), digest: this.all.digest('hex').slice(0, 32) };
  }
}

/**
 * Synthesizes the transformed workload lazily, one request per pull: fetches each arrival's record, applies its drift
 * and fingerprint salt, synthesizes the body through the protocol adapter (seeded per index: `synth/<index>`; content
 * keyed by fingerprints from one `shared` stream) and applies its anomaly. Feeds `digest` when given.
 */
export function* synthesizeWorkload(arrivals: readonly Arrival[], getRecord: (seq: number) => TraceRecord, rng: Rng, digest?: WorkloadDigest, opts?: SynthOptions): Generator<PlannedRequest> {
  const synth = rng.child('synth');
  const shared = rng.child('shared');
  for (let index = 0; index < arrivals.length; index++) {
    const a = arrivals[index]!;
    const base = getRecord(a.seq);
    const r = salted(applyDriftToRecord(base, [...a.drift, ...anomalyDrift(a.anomaly, base)]), a.fingerprintSalt);
    const s = applyAnomaly(synthesizeRequest(r, synth.child(String(index)), shared, opts), r, a.anomaly);
    const p: PlannedRequest = {
      index,
      traceSeq: a.seq,
      scheduledUs: a.atUs,
      method: s.method,
      path: s.path,
      headers: s.headers,
      body: s.body,
      expectedOutputTokens: r.outputTokens,
      promptTokens: r.promptTokens,
      llm: isGenerative(r.protocol),
      label: a.anomaly,
    };
    digest?.add(p);
    yield p;
  }
}
