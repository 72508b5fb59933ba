import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { TracewarpError } from '../errors.ts';
import { SessionTracker } from '../sessions/infer.ts';
import type { TraceRecord } from '../types.ts';

/** Longest line an importer reads (16 MiB: a 200k-token prompt's block ids are a few MB); longer lines are refused. */
export const MAX_LINE_CHARS = 16 * 1024 * 1024;

/** One parsed line and a way to refuse it naming the file and line. */
export interface JsonlRow {
  value: Record<string, unknown>;
  bad: (what: string) => TracewarpError;
}

/**
 * Reads a JSON-lines trace one object a line (blank lines skipped), each mapped by `toRecord` in order.
 * @throws TracewarpError `TW_IMPORT_FORMAT` naming the file and line: not JSON, not an object, over
 * {@link MAX_LINE_CHARS}, or whatever `toRecord` refuses (its message should say what a line must hold: `expect`).
 */
export async function* readJsonl<T>(path: string, format: string, expect: string, toRecord: (row: JsonlRow) => T): AsyncGenerator<T> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === '') continue;
      const at = lineNo;
      const bad = (what: string) => new TracewarpError('TW_IMPORT_FORMAT', `${path}:${at}: ${what} (expected ${expect})`);
      if (line.length > MAX_LINE_CHARS) throw bad(`the line is ${line.length} characters long, over the cap of ${MAX_LINE_CHARS}`);
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw bad('not valid JSON');
      }
      if (!value || typeof value !== 'object' || Array.isArray(value)) throw bad('not a JSON object');
      yield toRecord({ value: value as Record<string, unknown>, bad });
    }
  } catch (err) {
    if (err instanceof TracewarpError) throw err;
    throw new TracewarpError('TW_IMPORT_FORMAT', `${path}: cannot read as ${format}: ${(err as Error).message}`, { cause: err });
  }
}

/** A non-negative integer field, or the row is refused. */
export function count(row: JsonlRow, key: string): number {
  const v = row.value[key];
  if (!Number.isInteger(v) || (v as number) < 0) throw row.bad(`${key} must be a non-negative integer`);
  return v as number;
}

/** An optional array of integers (`hash_ids`). */
export function intList(row: JsonlRow, key: string): number[] | undefined {
  const v = row.value[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x))) throw row.bad(`${key} must be an array of integers`);
  return v as number[];
}

/**
 * Gives imported records their sessions as they stream by (arrival order): imports know no service times, so a
 * parent's answer is taken to end at its arrival and `think_us` is the arrival gap, an upper bound of the real think
 * time. Roots found later are updated through `link` (the writer's `linkSessionRoot`).
 */
export class ImportSessions {
  private readonly tracker = new SessionTracker();

  constructor(private readonly onRoot: (seq: number, link: NonNullable<TraceRecord['session']>) => void) {}

  /** Links `r` by its prefix blocks, or by the source's own ids when it names them (`parentKey` null: a root). */
  link(r: TraceRecord, ids?: { own: string; parent: string | null }): void {
    r.session = this.tracker.link({
      seq: r.seq, arrivalUs: r.offsetUs, endUs: null, answered: true, promptTokens: r.promptTokens, outputTokens: r.outputTokens,
      blocks: r.features.prefixBlocks, blockTokens: r.features.prefixBlockTokens,
      ...(ids ? { ownKey: ids.own, parentKey: ids.parent } : {}),
    });
    for (const p of this.tracker.takePromoted()) this.onRoot(p.seq, p.link);
  }
}
