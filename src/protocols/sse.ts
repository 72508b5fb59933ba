/**
 * Incremental splitter for streamed answers: Server-Sent Events (`text/event-stream`, events end at a blank line,
 * per the WHATWG HTML "server-sent events" parsing rules) and NDJSON (`application/x-ndjson`, one event a line, as
 * TGI/Ollama stream). Feed raw chunks in arrival order; get back the complete events each chunk finished.
 */
export type StreamFormat = 'sse' | 'ndjson';

/** Which stream format a response content type is, or null for a non-streamed answer. */
export function streamFormatOf(contentType: string | undefined | null): StreamFormat | null {
  if (!contentType) return null;
  const ct = contentType.toLowerCase();
  if (ct.startsWith('text/event-stream')) return 'sse';
  if (ct.startsWith('application/x-ndjson') || ct.startsWith('application/jsonl') || ct.startsWith('application/ndjson')) return 'ndjson';
  return null;
}

/** One complete event: for SSE the joined `data:` lines (may be empty for comment/keep-alive events). */
export interface StreamEvent {
  data: string;
  /** SSE `event:` field, if any. */
  event?: string;
}

/** The end of an SSE event: a blank line, with any of the three line ends. */
const SSE_BOUNDARY = /\r\n\r\n|\n\n|\r\r/;
const LINE_END = /\n/;

/** Splits one answer's stream (SSE or NDJSON) into events as its chunks arrive; one instance per answer. */
export class EventSplitter {
  private readonly decoder = new TextDecoder('utf-8');
  /**
   * Text after the last event boundary, kept as the chunks it came in: an event of many MB arriving in small chunks
   * is joined once when it completes, not re-joined and re-scanned on every chunk (which made a long event quadratic).
   */
  private pending: string[] = [];
  private pendingLength = 0;
  /** The last 3 characters of `pending`: a boundary (at most 4 characters) may straddle two chunks. */
  private tail = '';
  constructor(readonly format: StreamFormat) {}

  /** Feeds one chunk; returns the events it completed (possibly none). Linear in the bytes fed, however long an event. */
  push(chunk: Uint8Array): StreamEvent[] {
    const text = this.decoder.decode(chunk, { stream: true });
    if (text.length === 0) return [];
    if (this.pendingLength > 0 && !(this.format === 'sse' ? SSE_BOUNDARY : LINE_END).test(this.tail + text)) {
      this.pending.push(text);
      this.pendingLength += text.length;
      this.tail = (this.tail + text).slice(-3);
      return [];
    }
    const from = Math.max(0, this.pendingLength - this.tail.length);
    const buf = this.pending.join('') + text;
    const { events, rest } = this.format === 'sse' ? sseEvents(buf, from) : lineEvents(buf, from);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingLength = rest.length;
    this.tail = rest.slice(-3);
    return events;
  }
}

/** Complete NDJSON lines of `buf` (no line end before `from`); `rest` is the unfinished last line. */
function lineEvents(buf: string, from: number): { events: StreamEvent[]; rest: string } {
  const events: StreamEvent[] = [];
  let start = 0;
  let nl: number;
  while ((nl = buf.indexOf('\n', Math.max(start, from))) >= 0) {
    const line = buf.slice(start, nl).replace(/\r$/, '');
    start = nl + 1;
    if (line.trim().length > 0) events.push({ data: line });
  }
  return { events, rest: buf.slice(start) };
}

/** Complete SSE events of `buf` (no boundary starts before `from`); `rest` is the unfinished last event. */
function sseEvents(buf: string, from: number): { events: StreamEvent[]; rest: string } {
  const events: StreamEvent[] = [];
  const boundary = new RegExp(SSE_BOUNDARY.source, 'g'); // own lastIndex per call
  let start = 0;
  for (;;) {
    boundary.lastIndex = Math.max(start, from);
    const m = boundary.exec(buf);
    if (!m) break;
    const ev = parseSseBlock(buf.slice(start, m.index));
    start = m.index + m[0].length;
    if (ev) events.push(ev);
  }
  return { events, rest: buf.slice(start) };
}

/** One SSE event block (the lines before a blank line) → its event, or null for a comment-only block. */
function parseSseBlock(block: string): StreamEvent | null {
  const data: string[] = [];
  let event: string | undefined;
  let fields = 0;
  for (const line of block.split(/\r\n|\n|\r/)) {
    if (line.startsWith(':')) continue; // comment / keep-alive
    const colon = line.indexOf(':');
    const name = colon >= 0 ? line.slice(0, colon) : line;
    let value = colon >= 0 ? line.slice(colon + 1) : '';
    if (value.startsWith(' ')) value = value.slice(1);
    if (name === 'data') { data.push(value); fields++; }
    else if (name === 'event') { event = value; fields++; }
    else if (name) fields++;
  }
  if (fields === 0) return null;
  return event === undefined ? { data: data.join('\n') } : { data: data.join('\n'), event };
}
