import { startSim, type SimOptions } from '../sim/server.ts';
import { type Output, onceInterrupted } from './output.ts';

/** `tracewarp sim`: serves until SIGINT/SIGTERM. */
export async function runSim(opts: SimOptions, out: Output): Promise<number> {
  const interrupted = onceInterrupted();
  const sim = await startSim(opts);
  const t = sim.timing;
  out.out(`tracewarp sim listening on ${sim.url} (max batch ${t.maxBatch}, prefill ${t.prefillUsPerToken} µs/token, decode step ${t.decodeStepMs} ms + ${t.perSeqStepMs} ms per extra sequence${t.kvCacheTokens > 0 ? `, KV cache ${t.kvCacheTokens} tokens` : ''}${t.modelLoadMs > 0 ? `, model load ${t.modelLoadMs} ms` : ''}${sim.prefixCacheTokens > 0 ? `, prefix cache ${sim.prefixCacheTokens} tokens` : ''})`);
  await interrupted.promise;
  await sim.close();
  return 0;
}
