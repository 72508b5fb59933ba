// A bare @fastify/http-proxy in front of an upstream, as the baseline for the recording proxy's overhead: the same
// library tracewarp record builds on, with nothing recorded. Own process.  node --import tsx bench/bare-proxy.ts URL
import Fastify from 'fastify';
import httpProxy from '@fastify/http-proxy';

const upstream = process.argv[2]!;
const app = Fastify({ logger: false, bodyLimit: Number.MAX_SAFE_INTEGER });
await app.register(httpProxy, { upstream, http2: false });
const address = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`listening on ${address}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
