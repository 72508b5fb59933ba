import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir } from './helpers.ts';

describe('tracewarp demo (the README\'s first command, shortened)', () => {
  it('records real-trace-shaped traffic through the proxy, replays it at 2× against sim and reports', async () => {
    const tmp = tempDir();
    const trace = join(tmp.dir, 'demo.trace.db');
    const run = join(tmp.dir, 'demo.run.db');
    const r = await runCli(['demo', '--duration', '10', '--trace', trace, '--run', run, '--json'], { timeoutMs: 150_000 });
    expect(r.stderr).toContain('demo: 6/6');
    expect(r.code).toBe(0);
    // It ends with the decision: the same workload against a server that batches 2, compared request by request.
    expect(r.stderr).toContain('paired: the same requests on both sides');
    expect(r.stderr).toMatch(/ttft_p50 .*(worse|no significant difference|better|too few requests)/);
    const small = await runCli(['report', join(tmp.dir, 'demo-small-batch.run.db'), '--json']);
    expect(JSON.parse(small.stdout)).toMatchObject({ requests: 13, completed: 13 });
    // Each run has its HTML report beside it, with sim's scraped queue on the TTFT chart's data.
    for (const name of ['demo.report.html', 'demo-small-batch.report.html']) {
      const html = readFileSync(join(tmp.dir, name), 'utf8');
      expect(html).toContain('vllm:num_requests_waiting');
      expect(html).not.toMatch(/<script[^>]+src=/);
    }
    // The replay's own report carries the scraped series too.
    expect(JSON.parse(small.stdout).scrape.map((s: { name: string }) => s.name)).toContain('vllm:num_requests_waiting');
    // With --json, stdout is exactly one JSON object (progress goes to stderr).
    const summary = JSON.parse(r.stdout);
    // The first 10 s of the Azure conversation trace hold 13 requests.
    expect(summary).toMatchObject({ requests: 13, sent: 13, completed: 13, errors: 0, speed: 2 });
    expect(summary.ttftMs.count).toBe(13);
    const inspect = await runCli(['inspect', trace, '--json']);
    const info = JSON.parse(inspect.stdout);
    expect(info).toMatchObject({ formatVersion: 3, source: 'capture', requests: 13, statuses: { '200': 13 } });
    for (const k of ['durationS', 'meanRate', 'features']) expect(info).toHaveProperty(k);
    expect(Object.keys(info.features.promptTokens)).toEqual(expect.arrayContaining(['p50', 'p90', 'p99', 'max', 'mean']));
    const report = await runCli(['report', run, '--json']);
    expect(JSON.parse(report.stdout)).toMatchObject({ requests: 13, completed: 13, latencyMs: summary.latencyMs });
    // It ends with the capacity of sim for the recorded trace, and the sweep's HTML report beside the run.
    expect(r.stderr).toMatch(/demo: sim \(batch 64\) takes this traffic up to [\d.]+ req\/s/);
    expect(readFileSync(join(tmp.dir, 'demo-capacity.html'), 'utf8')).toContain('data-chart="hockey-stick"');
    tmp.cleanup();
  }, 180_000);
});
