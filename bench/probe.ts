// The external arrival probe: a server in its own process that only timestamps and answers. Each request's arrival
// (its headers parsed) is stamped on the machine's monotonic clock (process.hrtime, CLOCK_MONOTONIC: the same clock in
// every process here, so the stamps compare directly with the replayer's) and answered at once: a small JSON answer,
// or an SSE stream of `?tokens` events when the request body asks for `"stream": true` (the answer waits for the body).
//   GET /__probe/arrivals → [[arrivalUs, seq], …] (seq from x-tracewarp-seq, or -1);  POST /__probe/reset clears them.
import { createServer } from 'node:http';

const arrivals: Array<[number, number]> = [];
const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const JSON_ANSWER = '{"id":"p","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}';

const server = createServer((req, res) => {
  const at = nowUs();
  if (req.url === '/__probe/arrivals') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(arrivals));
    return;
  }
  if (req.url === '/__probe/reset') {
    arrivals.length = 0;
    req.resume();
    res.end('{}');
    return;
  }
  const seq = Number(req.headers['x-tracewarp-seq'] ?? -1);
  if (req.method !== 'GET' || req.url !== '/') arrivals.push([at, Number.isFinite(seq) ? seq : -1]);
  // Only the first bytes are looked at: whether the client asked for a stream.
  let head = '';
  req.on('data', (c: Buffer) => {
    if (head.length < 4096) head += c.toString('latin1', 0, Math.min(c.length, 4096));
  });
  req.on('end', () => {
    if (/"stream"\s*:\s*true/.test(head)) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n');
      res.write('data: {"choices":[{"delta":{"content":"ok"}}]}\n\n');
      res.end('data: {"choices":[],"usage":{"completion_tokens":1}}\n\ndata: [DONE]\n\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON_ANSWER);
  });
});
server.keepAliveTimeout = 120_000;
server.listen(Number(process.env.PROBE_PORT ?? 0), '127.0.0.1', () => {
  const a = server.address() as { port: number };
  process.stdout.write(`listening on http://127.0.0.1:${a.port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
