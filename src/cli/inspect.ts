import { featureStats, type FeatureStats } from '../metrics/exact.ts';
import { TraceReader } from '../trace/reader.ts';
import type { TraceMeta } from '../trace/schema.ts';
import type { Output } from './output.ts';

/** What `inspect --json` prints (see the README for each key). */
export interface InspectReport {
  file: string;
  formatVersion: number;
  source: string;
  sourceFile?: string;
  createdAt: string;
  requests: number;
  durationS: number;
  meanRate: number | null;
  statuses: Record<string, number>;
  recordsDropped: number;
  /** How writing went while recording (failures, re-created file), when the trace says. */
  recordingHealth: TraceMeta['recordingHealth'];
  /** Relayed WebSocket sessions among `requests` (left out of `features`). */
  webSocketSessions: number;
  /** Records the reader refused (over a cap, malformed) and left out of everything below, and why the first was. */
  refusedRecords: number;
  refusedFirst: string | null;
  /** Exchanges by error kind (`client_aborted` counts here even when the answer's status was 200); `none` for the rest. */
  errorKinds: Record<string, number>;
  /** HTTP requests by protocol, and by whether the answer streamed. */
  protocols: Record<string, number>;
  streamed: { streamed: number; notStreamed: number };
  /** HTTP requests by method and route (as `replay --only route=…` and `--path-map` name them), most first. */
  routes: Array<{ method: string; route: string; protocol: string; requests: number }>;
  /** HTTP requests by model as the trace keeps it (`replay --model-map` names them), most first; requests naming none are left out. */
  models: Array<{ model: string; requests: number }>;
  /** Which anonymization rules wrote the trace: format 1's recognized names, format 2's enumeration (`meta.anonymization.rules`). */
  anonymization: string;
  features: Record<string, FeatureStats>;
  /**
   * The same distributions per route (`METHOD route`), per protocol and streamed vs not (one latency figure over 6 ms
   * embeddings and 5 s chats misleads): dimension → value → feature → stats.
   */
  featuresBy: Record<InspectDimension, Record<string, Record<string, FeatureStats>>>;
  /**
   * Sessions (trace format 3): `count` sessions, `multiTurn` of them with a follow-up turn, `requestsInSessions`,
   * distributions of turns per session and of think time (ms, a follow-up's arrival minus its parent's answer end;
   * imports: the arrival gap, an upper bound), null when the trace has no sessions.
   */
  sessions: SessionStats | null;
}

/** Session statistics of a trace (see {@link InspectReport.sessions}). */
export interface SessionStats {
  count: number;
  multiTurn: number;
  requestsInSessions: number;
  turnsPerSession: FeatureStats | null;
  thinkTimeMs: FeatureStats | null;
}

/** The dimensions `inspect` breaks its distributions down by. */
export const INSPECT_DIMENSIONS = ['route', 'protocol', 'streamed'] as const;
export type InspectDimension = (typeof INSPECT_DIMENSIONS)[number];
type Columns = Record<string, number[]>;
const newColumns = (): Columns => ({ promptTokens: [], outputTokens: [], requestBytes: [], responseBytes: [], latencyMs: [], ttftMs: [], itlMs: [] });

function statsOf(cols: Columns): Record<string, FeatureStats> {
  const features: Record<string, FeatureStats> = {};
  for (const [name, values] of Object.entries(cols)) {
    const st = featureStats(values);
    if (st) features[name] = st;
  }
  return features;
}

/**
 * Reads a trace's metadata and distributions, from the records the reader accepts only (one pass): a record refused
 * as over a cap or malformed is counted in `refusedRecords` and in nothing else.
 * @throws TracewarpError for a file that is not a readable trace.
 */
export function inspectTrace(path: string): InspectReport {
  const r = new TraceReader(path);
  try {
    const cols = newColumns();
    const by = Object.fromEntries(INSPECT_DIMENSIONS.map((d) => [d, new Map<string, Columns>()])) as Record<InspectDimension, Map<string, Columns>>;
    let groups: Columns[] = [];
    // Each value goes to the whole trace's columns and to its record's route, protocol and streamed group.
    const push = (name: string, v: number | null, scale = 1) => {
      if (v === null) return;
      cols[name]!.push(v / scale);
      for (const g of groups) g[name]!.push(v / scale);
    };
    const statuses: Record<string, number> = {};
    const mix = newMix();
    let requests = 0;
    let webSocketSessions = 0;
    let firstUs = Infinity;
    let lastUs = -Infinity;
    const turns = new Map<number, number>();
    const thinkMs: number[] = [];
    for (const rec of r.records()) {
      requests++;
      if (rec.session) {
        turns.set(rec.session.session, (turns.get(rec.session.session) ?? 0) + 1);
        if (rec.session.thinkUs !== null) thinkMs.push(rec.session.thinkUs / 1000);
      }
      firstUs = Math.min(firstUs, rec.offsetUs);
      lastUs = Math.max(lastUs, rec.offsetUs);
      bump(statuses, rec.status === null ? 'none' : String(rec.status));
      if (rec.protocol === 'websocket') {
        webSocketSessions++;
        continue; // a session's duration is not a request's latency
      }
      addToMix(mix, rec);
      const keys: Record<InspectDimension, string> = { route: `${rec.method} ${rec.route}`, protocol: rec.protocol, streamed: rec.streamed ? 'streamed' : 'not streamed' };
      groups = INSPECT_DIMENSIONS.map((d) => by[d].get(keys[d]) ?? by[d].set(keys[d], newColumns()).get(keys[d])!);
      push('promptTokens', rec.promptTokens);
      push('outputTokens', rec.outputTokens);
      push('requestBytes', rec.requestBytes);
      push('responseBytes', rec.responseBytes);
      push('latencyMs', rec.latencyUs, 1000);
      push('ttftMs', rec.ttftUs, 1000);
      // Inter-token latency: gaps between consecutive content events of each streamed answer (traces recorded before
      // content events were marked: every event from the first content event on).
      if (!rec.eventOffsetsUs || rec.ttftUs === null) continue;
      const skip = new Set(rec.features.nonContentEvents ?? []);
      const content = rec.features.nonContentEvents ? rec.eventOffsetsUs.filter((_, i) => !skip.has(i)) : rec.eventOffsetsUs.filter((t) => t >= rec.ttftUs!);
      for (let i = 1; i < content.length; i++) push('itlMs', content[i]! - content[i - 1]!, 1000);
    }
    const features = statsOf(cols);
    const featuresBy = Object.fromEntries(INSPECT_DIMENSIONS.map((d) => [d, Object.fromEntries([...by[d]].map(([k, c]) => [k, statsOf(c)]))])) as InspectReport['featuresBy'];
    const durationS = requests > 0 ? (lastUs - firstUs) / 1e6 : 0;
    return {
      file: path,
      formatVersion: r.meta.formatVersion,
      source: r.meta.source,
      sourceFile: r.meta.sourceFile,
      createdAt: r.meta.createdAt,
      requests,
      durationS: Math.round(durationS * 1000) / 1000,
      meanRate: requests > 1 && durationS > 0 ? Math.round(((requests - 1) / durationS) * 1000) / 1000 : null,
      statuses,
      recordsDropped: r.meta.recordsDropped,
      recordingHealth: r.meta.recordingHealth,
      webSocketSessions,
      refusedRecords: r.skipped,
      refusedFirst: r.refused[0]?.message ?? null,
      ...mixResult(mix),
      anonymization: anonymizationOf(r.meta.formatVersion),
      features,
      featuresBy,
      sessions: sessionStats(turns, thinkMs),
    };
  } finally {
    r.close();
  }
}

function sessionStats(turns: Map<number, number>, thinkMs: number[]): SessionStats | null {
  if (turns.size === 0) return null;
  const perSession = [...turns.values()];
  return {
    count: turns.size,
    multiTurn: perSession.filter((n) => n > 1).length,
    requestsInSessions: perSession.reduce((a, b) => a + b, 0),
    turnsPerSession: featureStats(perSession),
    thinkTimeMs: featureStats(thinkMs),
  };
}

const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);

type Mix = Pick<InspectReport, 'errorKinds' | 'protocols' | 'streamed'> & { routes: Map<string, InspectReport['routes'][number]>; models: Record<string, number> };
const newMix = (): Mix => ({ errorKinds: {}, protocols: {}, streamed: { streamed: 0, notStreamed: 0 }, routes: new Map(), models: {} });

/** Counts an HTTP request into the traffic mix: error kind, protocol, streamed or not, route. */
function addToMix(m: Mix, rec: { errorKind: string | null; protocol: string; streamed: boolean; method: string; route: string; model: string | null }): void {
  bump(m.errorKinds, rec.errorKind ?? 'none');
  if (rec.model !== null) bump(m.models, rec.model);
  bump(m.protocols, rec.protocol);
  if (rec.streamed) m.streamed.streamed++;
  else m.streamed.notStreamed++;
  const key = `${rec.method} ${rec.route} ${rec.protocol}`;
  const e = m.routes.get(key) ?? { method: rec.method, route: rec.route, protocol: rec.protocol, requests: 0 };
  e.requests++;
  m.routes.set(key, e);
}

function mixResult(m: Mix): Pick<InspectReport, 'errorKinds' | 'protocols' | 'streamed' | 'routes' | 'models'> {
  return {
    errorKinds: m.errorKinds, protocols: m.protocols, streamed: m.streamed,
    routes: [...m.routes.values()].sort((x, y) => y.requests - x.requests || x.route.localeCompare(y.route)),
    models: Object.entries(m.models).map(([model, requests]) => ({ model, requests })).sort((x, y) => y.requests - x.requests || x.model.localeCompare(y.model)),
  };
}

/** The rules a trace's format version stands for, in a line. */
function anonymizationOf(formatVersion: number): string {
  return formatVersion >= 2
    ? 'by enumeration (format 2): protocol vocabulary kept; other keys, path words, model-id parts and names are keyed fingerprints'
    : 'by recognition (format 1): keys, path words, model ids and names that read like names were kept as recorded';
}

/** Routes listed in `inspect`'s text (all of them are in `--json`). */
const ROUTES_SHOWN = 10;

/** `tracewarp inspect`. */
export function runInspect(path: string, opts: { json?: boolean }, out: Output): number {
  const rep = inspectTrace(path);
  if (opts.json) {
    out.out(JSON.stringify(rep));
    return 0;
  }
  out.out(`${rep.file}: tracewarp trace v${rep.formatVersion}, source ${rep.source}${rep.sourceFile ? ` (${rep.sourceFile})` : ''}, created ${rep.createdAt}`);
  out.out(`requests ${rep.requests}   duration ${rep.durationS.toFixed(1)} s   mean rate ${rep.meanRate?.toFixed(2) ?? '—'} req/s${rep.recordsDropped ? `   records dropped ${rep.recordsDropped}` : ''}${rep.webSocketSessions ? `   (${rep.webSocketSessions} of them WebSocket sessions)` : ''}`);
  if (rep.refusedRecords > 0) out.out(`refused: ${rep.refusedRecords} records could not be used (over a cap or malformed); the first: ${rep.refusedFirst}`);
  const h = rep.recordingHealth;
  if (h && !h.ok) out.out(`recording was degraded: ${h.recordsDropped} exchanges forwarded but not recorded, ${h.writeFailures} failed writes${h.firstFailure ? ` (first: ${h.firstFailure.code} at ${h.firstFailure.at})` : ''}${h.fileRecreated ? `, the file made again ${h.fileRecreated}×` : ''}`);
  const imported = rep.source.startsWith('import:') && Object.keys(rep.statuses).every((k) => k === 'none');
  out.out(`statuses: ${imported ? '— (imported: the source has no answers)' : Object.entries(rep.statuses).map(([k, v]) => `${k}=${v}`).join('  ')}`);
  const kinds = Object.entries(rep.errorKinds).filter(([k]) => k !== 'none');
  if (kinds.length > 0) out.out(`errors by kind: ${kinds.map(([k, v]) => `${k}=${v}`).join('  ')}`);
  out.out(`protocols: ${Object.entries(rep.protocols).map(([k, v]) => `${k}=${v}`).join('  ') || '—'}   streamed ${rep.streamed.streamed}, not streamed ${rep.streamed.notStreamed}`);
  if (rep.routes.length > 0) out.out(`routes (${rep.routes.length}${rep.routes.length > ROUTES_SHOWN ? `, the ${ROUTES_SHOWN} busiest` : ''}):`);
  for (const x of rep.routes.slice(0, ROUTES_SHOWN)) out.out(`  ${String(x.requests).padStart(8)}  ${x.method.padEnd(6)} ${x.route}  (${x.protocol})`);
  if (rep.models.length > 0) out.out(`models: ${rep.models.slice(0, ROUTES_SHOWN).map((m) => `${m.model}=${m.requests}`).join('  ')}${rep.models.length > ROUTES_SHOWN ? '  …' : ''}`);
  const ss = rep.sessions;
  if (ss) out.out(`sessions: ${ss.count} (${ss.multiTurn} multi-turn) holding ${ss.requestsInSessions} requests; turns per session p50 ${ss.turnsPerSession?.p50 ?? '—'}, max ${ss.turnsPerSession?.max ?? '—'}; think time p50 ${ss.thinkTimeMs ? `${(ss.thinkTimeMs.p50 / 1000).toFixed(1)} s` : '—'}`);
  out.out(`anonymized ${rep.anonymization}`);
  out.out(`  ${'feature'.padEnd(16)}${['p50', 'p90', 'p99', 'max', 'mean'].map((h) => h.padStart(11)).join('')}`);
  for (const [name, s] of Object.entries(rep.features)) {
    out.out(`  ${name.padEnd(16)}${[s.p50, s.p90, s.p99, s.max, s.mean].map((v) => String(Math.round(v * 10) / 10).padStart(11)).join('')}`);
  }
  for (const d of INSPECT_DIMENSIONS) {
    const groups = Object.entries(rep.featuresBy[d]);
    if (groups.length < 2) continue;
    out.out(`by ${d}:${' '.repeat(Math.max(1, 40 - d.length))}  latency ms p50/p99     TTFT ms p50/p99   prompt tokens p50/p99`);
    const pair = (s: FeatureStats | undefined) => (s ? `${Math.round(s.p50 * 10) / 10}/${Math.round(s.p99 * 10) / 10}` : '—').padStart(18);
    for (const [k, f] of groups.slice(0, ROUTES_SHOWN)) out.out(`  ${(k.length > 42 ? `${k.slice(0, 41)}…` : k).padEnd(42)}${pair(f.latencyMs)}${pair(f.ttftMs)}${pair(f.promptTokens)}`);
  }
  return 0;
}
