import { promptTextOf } from '../protocols/llm.ts';
import type { Rng } from '../rng.ts';
import type { TraceRecord } from '../types.ts';
import { type BlockTextCache, ConcatText, segmentText, type TokenText, wordSegment } from './text.ts';

/**
 * What a follow-up turn of a session must know to rebuild its history (`replay --history recorded`), settled when
 * the workload is planned (`sessions/schedule.ts`): its session's first request, and the token counts of what came
 * after that request's prompt — answer 0, new part 1, answer 1, …, answer k−1, new part k. Turn k+1's list begins with
 * turn k's, so its prompt begins with exactly the text turn k was sent plus a stand-in of turn k's recorded answer.
 */
export interface HistorySpec {
  /** The session's first request in the workload: its index, trace record and fingerprint salt. */
  rootIndex: number;
  rootSeq: number;
  rootSalt: string | null;
  /** The session's identity in the workload (clones differ): seeds its segments. */
  key: string;
  /** Tokens of each segment after the first turn's prompt, in order (answers are the recorded output lengths). */
  segments: number[];
}

/**
 * The leading text of a follow-up turn: its session's first prompt as that request was synthesized, then each
 * segment of {@link HistorySpec} from the session's own stream (`shared/session:<key>/<j>`), so every turn of a
 * session (in any thread) makes the same bytes for the same segment.
 */
export class PromptLead {
  constructor(private readonly root: TokenText, private readonly segments: readonly number[], private readonly stream: Rng) {}

  /** A prompt of `total` tokens: the lead, cut to `total`, then tokens of `tail` if the prompt is longer than the lead. */
  text(total: number, tail: Rng, cache?: BlockTextCache): TokenText {
    const parts: TokenText[] = [this.root];
    let have = this.root.tokens;
    for (let j = 0; j < this.segments.length && have < total; j++) {
      const n = this.segments[j]!;
      if (n <= 0) continue;
      const make = () => wordSegment(n, this.stream.child(String(j)));
      parts.push(segmentText(cache ? cache.get(`${this.stream.seed}/${j}|${n}`, make) : make()));
      have += n;
    }
    if (have < total) parts.push(segmentText(wordSegment(total - have, tail)));
    return new ConcatText(parts);
  }
}

/**
 * The lead of a follow-up turn from its spec and its session's first record (already mapped and salted as that
 * request was): that request's prompt text is rebuilt with its own streams (`synth/<rootIndex>`).
 */
export function promptLead(h: HistorySpec, root: TraceRecord, synth: Rng, shared: Rng, blocks?: BlockTextCache): PromptLead {
  const rootText = promptTextOf(root.features, { rng: synth.child(String(h.rootIndex)), shared, blocks });
  return new PromptLead(rootText, h.segments, shared.child(`session:${h.key}`));
}
