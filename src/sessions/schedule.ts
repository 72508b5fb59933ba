import type { HistorySpec } from '../synth/history.ts';
import type { Arrival } from '../workload/types.ts';
import { sessionKey } from '../workload/warp.ts';

/**
 * How a replay sends the sessions of its workload (`replay --sessions`):
 * - `closed` (the default when the workload has sessions): a session's first turn is sent at its (warped) time; turn
 *   k+1 is sent its think time after turn k's answer ended, however fast or slow the server was. Closed loop within a
 *   session, open loop across sessions (new sessions keep arriving on the schedule).
 * - `open`: every request at its own scheduled time, as if requests were independent.
 */
export type SessionMode = 'closed' | 'open';

/**
 * Think time of a follow-up turn in closed mode (`--think-time`): `recorded` keeps the recorded think time (at
 * `--speed 10`: ten times the users, each as slow as before), `scaled` warps it like the schedule (divided by the
 * speed), `zero` sends the next turn as soon as the answer ended, `max` caps the recorded one (µs). A negative recorded
 * think time (the next turn was sent before the answer ended) counts as 0.
 */
export type ThinkTime = { kind: 'recorded' } | { kind: 'scaled' } | { kind: 'zero' } | { kind: 'max'; us: number };

/** Defaults (`replay --sessions`, `--think-time`, `--history`). */
export const DEFAULT_THINK_TIME: ThinkTime = { kind: 'recorded' };

/**
 * The session structure of a planned workload, by request index: `parent[i]` is the index request i waits for (−1: sent
 * on its own schedule), `thinkUs[i]` the think time after that answer, `session[i]` the workload session number (−1:
 * none; clones and loop passes are sessions of their own) and `turn[i]`.
 */
export interface SessionPlan {
  parent: Int32Array;
  thinkUs: Float64Array;
  session: Int32Array;
  turn: Int32Array;
  /** Sessions in the workload, and the follow-up turns that wait for a parent. */
  sessions: number;
  followUps: number;
}

/** Parses `--think-time recorded|scaled|zero|max:D` (D parsed by `durationUs`). @throws Error saying what is allowed. */
export function parseThinkTime(text: string, durationUs: (d: string) => number): ThinkTime {
  if (text === 'recorded' || text === 'scaled' || text === 'zero') return { kind: text };
  const m = /^max:(.+)$/.exec(text);
  if (m) return { kind: 'max', us: durationUs(m[1]!) };
  throw new Error(`--think-time is recorded, scaled, zero or max:DURATION (e.g. max:30s), got '${text}'`);
}

/** The think time a follow-up waits, µs. */
export function thinkOf(a: Arrival, think: ThinkTime): number {
  const recorded = Math.max(0, a.session?.thinkUs ?? 0);
  switch (think.kind) {
    case 'recorded': return recorded;
    case 'scaled': return recorded * (a.timeScale ?? 1);
    case 'zero': return 0;
    case 'max': return Math.min(recorded, think.us);
  }
}

/**
 * Links each follow-up turn of the workload to the request it waits for: the arrival of its own session (same
 * session, clone and fingerprint salt) made from its recorded parent. A turn whose parent is not in the workload (left
 * out by a filter, or a window asked to cut sessions) is sent on its own schedule. Null when nothing waits.
 */
export function planSessions(arrivals: readonly Arrival[], think: ThinkTime = DEFAULT_THINK_TIME): SessionPlan | null {
  const n = arrivals.length;
  const plan: SessionPlan = { parent: new Int32Array(n).fill(-1), thinkUs: new Float64Array(n), session: new Int32Array(n).fill(-1), turn: new Int32Array(n), sessions: 0, followUps: 0 };
  const bySeq = new Map<string, number>();
  const numbers = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const a = arrivals[i]!;
    if (!a.session) continue;
    const key = sessionKey(a);
    let s = numbers.get(key);
    if (s === undefined) numbers.set(key, (s = numbers.size));
    plan.session[i] = s;
    plan.turn[i] = a.session.turn;
    bySeq.set(`${key}#${a.seq}`, i);
    const p = a.session.parentSeq === null ? undefined : bySeq.get(`${key}#${a.session.parentSeq}`);
    if (p === undefined) continue;
    plan.parent[i] = p;
    plan.thinkUs[i] = Math.round(thinkOf(a, think));
    plan.followUps++;
  }
  plan.sessions = numbers.size;
  return plan.followUps > 0 ? plan : null;
}

/**
 * The history of each follow-up turn (`--history recorded`): its session's first request in the workload, and after
 * that request's prompt, per earlier turn its recorded answer length and the tokens the next turn added (its prompt
 * minus the previous prompt and answer; never negative). Indexes without a parent get none.
 */
export function historySpecs(arrivals: readonly Arrival[], plan: SessionPlan): Map<number, HistorySpec> {
  const out = new Map<number, HistorySpec>();
  for (let i = 0; i < arrivals.length; i++) {
    const p = plan.parent[i]!;
    if (p < 0) continue;
    const before = out.get(p);
    const parent = arrivals[p]!;
    const root = before ? before.rootIndex : p;
    const answer = Math.max(0, parent.outputTokens ?? 0);
    const added = Math.max(0, (arrivals[i]!.promptTokens ?? 0) - (parent.promptTokens ?? 0) - answer);
    out.set(i, {
      rootIndex: root,
      rootSeq: arrivals[root]!.seq,
      rootSalt: arrivals[root]!.fingerprintSalt,
      key: `${plan.session[i]}`,
      segments: [...(before?.segments ?? []), answer, added],
    });
  }
  return out;
}

/**
 * The earliest a closed replay of the workload can send its last request, µs: each follow-up no sooner than its
 * parent's earliest send plus its think time (answers taking no time at all). Beside the schedule's own end it says how
 * much longer think times make a run (`replay` warns when they stretch it).
 */
export function closedSpanUs(arrivals: readonly Arrival[], plan: SessionPlan): number {
  const earliest = new Float64Array(arrivals.length);
  let last = 0;
  for (let i = 0; i < arrivals.length; i++) {
    const p = plan.parent[i]!;
    earliest[i] = p >= 0 ? earliest[p]! + plan.thinkUs[i]! : arrivals[i]!.atUs;
    last = Math.max(last, earliest[i]!);
  }
  return last;
}
