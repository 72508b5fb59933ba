// `npm run bench`: the benchmarks one after another (each compares side by side within its own run), printed as one
// JSON object. `npm run bench:smoke` (in .ci/run): a few seconds of each, failing only on a gross regression — a
// figure ten or more times worse than this machine class gives (BENCHMARKS.md), never on ordinary noise.
//   npx tsx bench/all.ts [--smoke]
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, runNode } from './common.ts';

const { values } = parseArgs({ options: { smoke: { type: 'boolean' } } });
const smoke = Boolean(values.smoke);
const benches = ['synthesis', 'replay-fidelity', 'proxy-overhead', 'recorder-capacity', ...(smoke ? [] : ['replay-accuracy', 'event-splitter'])];

const results: Record<string, unknown> = {};
for (const b of benches) {
  const r = await runNode(['--import', 'tsx', join(ROOT, 'bench', `${b}.ts`), ...(smoke ? ['--smoke'] : [])], ROOT);
  if (r.code !== 0) {
    console.error(`bench ${b} failed (exit ${r.code}):\n${r.stderr}`);
    process.exit(1);
  }
  results[b] = JSON.parse(r.stdout.slice(r.stdout.indexOf(r.stdout.trimStart()[0] === '[' ? '[' : '{')));
}
console.log(JSON.stringify(results, null, 2));

if (smoke) {
  type Row = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const problems: string[] = [];
  const check = (ok: boolean, what: string) => {
    if (!ok) problems.push(what);
  };
  const synth = (results.synthesis as Row).rows[0];
  check(synth.promptMTokensPerS > 0.5, `synthesis: ${synth.promptMTokensPerS} M prompt tokens/s (this machine class: about 10)`);
  for (const row of results['replay-fidelity'] as Row[]) {
    const t = row.tracewarp;
    check(t.probeSaw === t.requests, `replay-fidelity ${row.case}: the probe saw ${t.probeSaw} of ${t.requests} requests`);
    check(t.achievedRatio > 0.9, `replay-fidelity ${row.case}: achieved/target rate ${t.achievedRatio}`);
    check(t.arrivalLagMs.p99 < 100, `replay-fidelity ${row.case}: arrival lag p99 ${t.arrivalLagMs.p99} ms (this machine class: under 10)`);
    check(t.reportedLatenessMs.p99 + 5 >= t.arrivalLagMs.p50, `replay-fidelity ${row.case}: reported lateness p99 ${t.reportedLatenessMs.p99} ms below the lag the probe saw`);
  }
  for (const row of results['recorder-capacity'] as Row[]) check(row.promptMTokensPerS > 0.1, `recorder-capacity ${row.promptTokens} tokens: ${row.promptMTokensPerS} M prompt tokens/s (this machine class: 1.5–3.5)`);
  const proxy = results['proxy-overhead'] as Row;
  check(proxy.recorded.lost === 0, `proxy-overhead: ${proxy.recorded.lost} exchanges neither recorded nor counted as dropped`);
  for (const [k, v] of Object.entries(proxy)) {
    if (v && typeof v === 'object' && 'tracewarpVsBare' in (v as Row) && (v as Row).tracewarp?.p50 !== undefined) {
      check((v as Row).tracewarpVsBare.addedP50Ms < 20, `proxy-overhead ${k}: ${(v as Row).tracewarpVsBare.addedP50Ms} ms added p50 over the bare proxy (this machine class: under 1)`);
    }
  }
  if (problems.length > 0) {
    console.error(`bench smoke: gross regression:\n  - ${problems.join('\n  - ')}`);
    process.exit(1);
  }
  console.error('bench smoke: no gross regression');
}
