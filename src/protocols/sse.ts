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

export class EventSplitter {
  private readonly decoder = new TextDecoder('utf-8');
  private buf = '';
  constructor(readonly format: StreamFormat) {}

  /** Feeds one chunk; returns the events it completed (possibly none). */
  push(chunk: Uint8Array): StreamEvent[] {
    this.buf += this.decoder.decode(chunk, { stream: true });
    return this.format === 'sse' ? this.sseEvents() : this.lineEvents();
  }

  private lineEvents(): StreamEvent[] {
    const out: StreamEvent[] = [];
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      if (line.trim().length > 0) out.push({ data: line });
    }
    return out;
  }

  private sseEvents(): StreamEvent[] {
    const out: StreamEvent[] = [];
    for (;;) {
      const m = /\r\n\r\n|\n\n|\r\r/.exec(this.buf);
      if (!m) break;
      const block = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
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
      if (fields > 0) out.push(event === undefined ? { data: data.join('\n') } : { data: data.join('\n'), event });
    }
    return out;
  }
}
