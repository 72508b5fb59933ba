import type { SessionLink } from '../types.ts';

/**
 * Finding sessions in traffic (issue 13). A session is a chain of requests where each one continued the answer of an
 * earlier one: a chat's next turn, an agent's next call. The evidence, strongest first:
 *
 * 1. **An explicit key** (`record --session-key header:x-session-id`, an importer's `chat_id`/`parent_chat_id`): every
 *    request with the same key is one session; a request's parent is the latest request of its session whose answer
 *    had ended when it arrived (none yet: it has no parent, but still a turn).
 * 2. **Message prefixes** (live capture of chat requests): a request whose messages begin with *all* the messages of an
 *    earlier request, and then hold at least one more message (the answer) is that request's next turn, provided the
 *    earlier answer had ended when it arrived and the new part can hold half of that answer's tokens. Each message
 *    boundary is a chained keyed fingerprint, so the match is exact: two requests that share only a system prompt (or
 *    any leading messages) are not merged, because the earlier one's own last message is not in the later one.
 * 3. **Prefix blocks** (imports with `hash_ids`, where only blocks of N tokens are known): a request whose blocks begin
 *    with every *complete* block of an earlier request, whose input is at least that request's input plus its output,
 *    and where that earlier request's last complete block was new in it (first seen there, so it is more than a prompt
 *    shared by many), is its next turn. Block ids cannot show the earlier prompt's last partial block, so this rule can
 *    join a request that repeated a long shared document and then asked more; it never joins requests that share only
 *    a prefix seen before either of them.
 *
 * A request is never forced into a session: without evidence it stays on its own (`session` null). Among several
 * candidates the longest shared prefix wins, then the latest ended. The tracker holds at most {@link MAX_TRACKED}
 * candidates (the oldest are forgotten), so memory is bounded on an endless recording.
 */

/** Candidate parents kept in memory at most (about 200 bytes each): older ones cannot be parents any more. */
export const MAX_TRACKED = 200_000;

/** A follow-up's new part must hold at least this fraction of its parent's answer tokens (tokenizers differ a little). */
export const ANSWER_FRACTION = 0.5;

/** What the tracker is told about one request. Times are µs on the trace's clock. */
export interface SessionEvidence {
  seq: number;
  arrivalUs: number;
  /** End of its answer (arrival + latency); null when unknown (imports without service times: the arrival is used). */
  endUs: number | null;
  /** A complete successful answer came back (only those can be continued). */
  answered: boolean;
  promptTokens: number | null;
  outputTokens: number | null;
  /** Explicit session key (a keyed fingerprint, never a raw value), or null. */
  key?: string | null;
  /** Explicit parent, by the key its source gave it (an importer's `parent_chat_id`), or null. */
  parentKey?: string | null;
  /** This request's own id in the source (an importer's `chat_id`), for {@link parentKey}. */
  ownKey?: string | null;
  /** Chained keyed fingerprints at the end of each message, in order (the last covers the whole prompt). */
  messagePrefixes?: readonly string[];
  /** Prefix block ids (complete blocks first; the last may be partial) and their size in tokens. */
  blocks?: readonly (string | number)[];
  blockTokens?: number;
}

interface Known {
  seq: number;
  endUs: number;
  session: number | null;
  turn: number;
  promptTokens: number | null;
  outputTokens: number | null;
  /** Its own link, once it has one. */
  link: SessionLink | null;
}

/**
 * Links requests into sessions, one at a time, by the rules above. Feed requests in the order their answers ended
 * (live capture) or in arrival order (imports): a parent must have been seen before its child.
 */
export class SessionTracker {
  private nextSession = 1;
  private readonly bySeq = new Map<number, Known>();
  private readonly byPrefix = new Map<string, Known>();
  private readonly byBlocks = new Map<string, Known>();
  private readonly blocksSeen = new Set<string>();
  private readonly byOwnKey = new Map<string, Known>();
  private readonly sessionsByKey = new Map<string, { session: number; turns: number; latest: Known[] }>();
  private readonly turnsOf = new Map<number, number>();
  private promoted: Array<{ seq: number; link: SessionLink }> = [];

  /** The session link of a request (null: on its own), remembering it as a candidate parent of later ones. */
  link(e: SessionEvidence): SessionLink | null {
    const known: Known = { seq: e.seq, endUs: e.endUs ?? e.arrivalUs, session: null, turn: 0, promptTokens: e.promptTokens, outputTokens: e.outputTokens, link: null };
    // An explicit key or parent decides alone; prefixes are evidence only where the source gives neither.
    const link = e.key ? this.byKey(e as SessionEvidence & { key: string }, known) : e.parentKey !== undefined ? this.byParentKey(e, known) : this.byEvidence(e, known);
    known.link = link;
    this.remember(e, known);
    return link;
  }

  private byKey(e: SessionEvidence & { key: string }, known: Known): SessionLink {
    let s = this.sessionsByKey.get(e.key);
    if (!s) this.sessionsByKey.set(e.key, (s = { session: this.nextSession++, turns: 0, latest: [] }));
    const parent = s.latest.filter((k) => k.endUs <= e.arrivalUs).sort((a, b) => b.endUs - a.endUs)[0] ?? null;
    s.latest.push(known);
    if (s.latest.length > 64) s.latest.shift();
    known.session = s.session;
    known.turn = s.turns++;
    return { session: s.session, turn: known.turn, parentSeq: parent?.seq ?? null, thinkUs: parent ? e.arrivalUs - parent.endUs : null };
  }

  /** A source that names each request's parent (or none): a root stays on its own until a child names it. */
  private byParentKey(e: SessionEvidence, known: Known): SessionLink | null {
    const parent = e.parentKey ? this.byOwnKey.get(e.parentKey) ?? null : null;
    return parent ? this.follow(parent, e, known) : null;
  }

  private byEvidence(e: SessionEvidence, known: Known): SessionLink | null {
    const parent = this.prefixParent(e) ?? this.blockParent(e);
    return parent ? this.follow(parent, e, known) : null;
  }

  /** The longest earlier whole prompt this one's messages begin with (and go beyond). */
  private prefixParent(e: SessionEvidence): Known | null {
    const p = e.messagePrefixes;
    if (!p || p.length < 2) return null;
    for (let i = p.length - 2; i >= 0; i--) {
      const k = this.byPrefix.get(p[i]!);
      if (k && this.canContinue(k, e)) return k;
    }
    return null;
  }

  private blockParent(e: SessionEvidence): Known | null {
    const b = e.blocks;
    if (!b || b.length < 2) return null;
    for (let i = b.length - 2; i >= 0; i--) {
      const k = this.byBlocks.get(blockKey(b, i));
      if (k && this.canContinue(k, e, true)) return k;
    }
    return null;
  }

  private canContinue(parent: Known, e: SessionEvidence, strictTokens = false): boolean {
    if (parent.endUs > e.arrivalUs || parent.seq === e.seq) return false;
    if (parent.promptTokens === null || e.promptTokens === null) return !strictTokens;
    const answer = parent.outputTokens ?? 0;
    return e.promptTokens - parent.promptTokens >= (strictTokens ? answer : ANSWER_FRACTION * answer);
  }

  private start(known: Known): SessionLink {
    known.session = this.nextSession++;
    known.turn = 0;
    this.turnsOf.set(known.session, 1);
    return { session: known.session, turn: 0, parentSeq: null, thinkUs: null };
  }

  private follow(parent: Known, e: SessionEvidence, known: Known): SessionLink {
    if (parent.session === null) {
      parent.link = this.start(parent);
      this.promoted.push({ seq: parent.seq, link: parent.link });
    }
    const session = parent.session!;
    const turn = this.turnsOf.get(session) ?? parent.turn + 1;
    this.turnsOf.set(session, turn + 1);
    known.session = session;
    known.turn = turn;
    return { session, turn, parentSeq: parent.seq, thinkUs: e.arrivalUs - parent.endUs };
  }

  private remember(e: SessionEvidence, known: Known): void {
    this.bySeq.set(known.seq, known);
    if (e.ownKey) this.byOwnKey.set(e.ownKey, known);
    if (e.answered) {
      const p = e.messagePrefixes;
      if (p && p.length > 0) this.byPrefix.set(p[p.length - 1]!, known);
      const b = e.blocks;
      if (b && b.length > 0 && e.promptTokens !== null && e.blockTokens) {
        const complete = Math.min(b.length, Math.floor(e.promptTokens / e.blockTokens));
        const lastKey = complete > 0 ? blockKey(b, complete - 1) : null;
        if (lastKey !== null && !this.blocksSeen.has(lastKey)) this.byBlocks.set(lastKey, known);
      }
    }
    if (e.blocks) for (let i = 0; i < e.blocks.length; i++) this.blocksSeen.add(blockKey(e.blocks, i));
    this.bound();
  }

  private bound(): void {
    for (const m of [this.bySeq, this.byPrefix, this.byBlocks, this.byOwnKey] as Array<Map<unknown, unknown>>) {
      while (m.size > MAX_TRACKED) m.delete(m.keys().next().value);
    }
    if (this.blocksSeen.size > MAX_TRACKED * 8) this.blocksSeen.clear();
    while (this.sessionsByKey.size > MAX_TRACKED) this.sessionsByKey.delete(this.sessionsByKey.keys().next().value!);
    while (this.turnsOf.size > MAX_TRACKED) this.turnsOf.delete(this.turnsOf.keys().next().value!);
  }

  /**
   * Requests seen earlier on their own that have since become turn 0 of a session (a later request continued them),
   * once each: callers that write as they go (capture, imports) update those rows.
   */
  takePromoted(): Array<{ seq: number; link: SessionLink }> {
    const out = this.promoted;
    this.promoted = [];
    return out;
  }
}

/** The key of block `i` of a chain: the chain up to it (a block id alone is shared by unrelated chains in some traces). */
function blockKey(blocks: readonly (string | number)[], i: number): string {
  // Mooncake ids are unique per prefix already (a chained hash); the string form keeps numbers and fingerprints apart.
  return typeof blocks[i] === 'number' ? `n${blocks[i]}` : `f${blocks[i]}`;
}
