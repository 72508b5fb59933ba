// A fixture upstream for benchmarks, run as its own process so it does not share an event loop with what is measured.
// GET/POST /json and POST /v1/chat/completions → small JSON (once the whole body is in); /sse?n=N&gap=MS → N SSE
// events, each carrying the upstream's send time (ms since its start, performance.timeOrigin-based, so a client on the
// same machine can compute per-event delay).
import { createServer } from 'node:http';

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  req.resume();
  req.on('end', () => {
    if (url.pathname === '/sse') {
      const n = Number(url.searchParams.get('n') ?? 20);
      const gap = Number(url.searchParams.get('gap') ?? 10);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let i = 0;
      const t = setInterval(() => {
        res.write(`data: {"i":${i},"sentAt":${performance.timeOrigin + performance.now()}}\n\n`);
        if (++i >= n) {
          clearInterval(t);
          res.end('data: [DONE]\n\n');
        }
      }, gap);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true,"choices":[{"message":{"role":"assistant","content":"ok"}}],"usage":{"completion_tokens":1}}');
  });
});
server.listen(0, '127.0.0.1', () => {
  const a = server.address() as { port: number };
  process.stdout.write(`listening on http://127.0.0.1:${a.port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
