import type { TraceRecord } from '../types.ts';
import { importedChatRecord, type ImportOptions } from './common.ts';
import { count, intList, readJsonl } from './jsonl.ts';

/** Tokens per `hash_ids` block in the Alibaba Bailian (Qwen) usage traces: 16 (the `blksz_16` of their file names). */
export const BAILIAN_BLOCK_TOKENS = 16;

/**
 * Reads the Alibaba Bailian / Qwen usage trace format (alibaba-edu/qwen-bailian-usagetraces-anon, the traces of
 * "KVCache Cache in the Wild", USENIX ATC '25), one JSON object a line: `chat_id` (integer, unique), `parent_chat_id`
 * (the `chat_id` this request continued, −1 for none), `timestamp` (seconds since the trace start, fractional),
 * `input_length` and `output_length` (tokens), `type` (a workload tag: text, image, file, search; kept as nothing),
 * `turn` (the request's turn in its conversation), `hash_ids` (one id per block of 16 prompt tokens). Written to that
 * schema as published; the fixtures in `test/fixtures/traces/` are our own rows in it.
 *
 * Sessions come from the explicit `parent_chat_id` (never inferred): the importer links them. `turn` is checked to
 * grow along a chain. Rows must be sorted by timestamp, and a parent must come before its child.
 * @returns records with `sessionIds` (own and parent `chat_id`) for the importer's session linking.
 * @throws TracewarpError `TW_IMPORT_FORMAT` naming the file and line of the first bad row.
 */
export function readBailian(path: string, opts: ImportOptions & { blockTokens?: number } = {}): AsyncGenerator<TraceRecord & { sessionIds: { own: string; parent: string | null } }> {
  const blockTokens = opts.blockTokens ?? BAILIAN_BLOCK_TOKENS;
  let seq = 0;
  let last = -Infinity;
  const turns = new Map<number, number>();
  return readJsonl(path, 'Bailian JSONL', 'JSON with chat_id, parent_chat_id, timestamp (s), input_length, output_length, turn, hash_ids', (row) => {
    const timestamp = row.value.timestamp;
    if (typeof timestamp !== 'number' || !Number.isFinite(timestamp) || timestamp < 0) throw row.bad('timestamp must be a non-negative number of seconds');
    const chatId = count(row, 'chat_id');
    const parent = row.value.parent_chat_id;
    if (!Number.isInteger(parent) || (parent as number) < -1) throw row.bad('parent_chat_id must be a chat_id or -1');
    const turn = row.value.turn === undefined ? null : count(row, 'turn');
    const input = count(row, 'input_length');
    const output = count(row, 'output_length');
    const ids = intList(row, 'hash_ids');
    if (timestamp < last) throw row.bad('lines are not sorted by timestamp');
    last = timestamp;
    if (turns.has(chatId)) throw row.bad(`chat_id ${chatId} appears twice`);
    const parentTurn = parent === -1 ? undefined : turns.get(parent as number);
    if (parent !== -1 && parentTurn === undefined) throw row.bad(`parent_chat_id ${parent} does not come before this line`);
    if (turn !== null && parentTurn !== undefined && parentTurn !== -1 && turn <= parentTurn) throw row.bad(`turn ${turn} does not follow its parent's turn ${parentTurn}`);
    turns.set(chatId, turn ?? -1);
    const features = ids && ids.length > 0 ? { prefixBlocks: ids, prefixBlockTokens: blockTokens } : {};
    const r = importedChatRecord(++seq, Math.round(timestamp * 1e6), input, output, opts, features);
    return { ...r, sessionIds: { own: String(chatId), parent: parent === -1 ? null : String(parent) } };
  });
}
