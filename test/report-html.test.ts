import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runReplay } from '../src/cli/replay.ts';
import { main } from '../src/cli/main.ts';
import { buildReport } from '../src/report/build.ts';
import { htmlReporter } from '../src/report/html.ts';
import { markdownReporter } from '../src/report/markdown.ts';
import type { RunReport } from '../src/report/run-report.ts';
import { startSim, type SimServer } from '../src/sim/server.ts';
import { captureOutput, launchChromium, openPage, ROOT, tempDir, writeChatTrace } from './helpers.ts';

// Issue 11, `report --format html|md`: one self-contained file, opened in real headless Chromium (Debian's, driven by
// playwright-core): no console error, no request but the file itself, every chart drawn with data, the tables there
// without JavaScript, report text escaped. The report is built from a real replay's run file with the sim scraped.

const ARTIFACTS = join(ROOT, 'test-artifacts');
const open = openPage;

describe('report --format html and md', () => {
  let sim: SimServer;
  let tmp: ReturnType<typeof tempDir>;
  let browser: Browser;
  let run: string;
  let report: RunReport;
  beforeAll(async () => {
    browser = await launchChromium();
    tmp = tempDir();
    sim = await startSim({ maxBatch: 2, decodeStepMs: 4, perSeqStepMs: 0 });
    const trace = join(tmp.dir, 'h.trace.db');
    writeChatTrace(trace, Array.from({ length: 30 }, (_, i) => i * 60_000), { outputTokens: 40, stream: true, promptTokens: 300 });
    run = join(tmp.dir, 'h.run.db');
    await runReplay(trace, { target: sim.url, speed: 1, seed: 1, out: run, quiet: true, slo: 'ttft<100ms,p99<30s,ttft_p50<1ms', scrape: [`${sim.url}/metrics`], scrapeIntervalMs: 100 }, captureOutput());
    report = buildReport([run]);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await sim?.close();
    tmp?.cleanup();
  });

  it('opens in Chromium with no error and no network request; every chart has data points and is drawn', async () => {
    const path = join(tmp.dir, 'report.html');
    expect(await main(['report', run, '--format', 'html', '--out', path], captureOutput())).toBe(1); // ttft_p50<1ms is missed
    const p = await open(browser, path);
    try {
      expect(p.errors).toEqual([]);
      expect(p.requests).toEqual([`file://${path}`]);
      const charts = await p.page.$$eval('.chart', (els) => els.map((e) => ({ id: e.getAttribute('data-chart'), points: Number(e.getAttribute('data-points')), canvas: e.querySelector('canvas')?.width ?? 0 })));
      expect(charts.map((c) => c.id)).toEqual(['rate', 'queue', 'latency', 'server', 'spectrum', 'tokens']);
      for (const c of charts) {
        expect(c.points, c.id!).toBeGreaterThan(0);
        expect(c.canvas, c.id!).toBeGreaterThan(0);
      }
      // The server's queue, scraped during the run, is on the TTFT chart's legend.
      expect(await p.page.textContent('.chart[data-chart="queue"]')).toContain('server queue (vllm:num_requests_waiting)');
      expect(await p.page.textContent('.banner.slo.bad')).toMatch(/SLO MISSED: ttft_p50<1ms \([\d.]+ ms, limit 1 ms\)/);
      mkdirSync(ARTIFACTS, { recursive: true });
      await p.page.screenshot({ path: join(ARTIFACTS, 'report-html.png'), fullPage: true });
      expect(statSync(join(ARTIFACTS, 'report-html.png')).size).toBeGreaterThan(20_000);
    } finally {
      await p.close();
    }
  });

  it('is readable without JavaScript: the tables are in the page', async () => {
    const path = join(tmp.dir, 'nojs.html');
    writeFileSync(path, htmlReporter(report));
    const p = await open(browser, path, false);
    try {
      const text = (await p.page.textContent('main'))!;
      expect(text).toContain('p99.9');
      expect(text).toContain('POST /v1/chat/completions');
      expect(text).toContain('vllm:num_requests_waiting');
      const latency = await p.page.$$eval('table tr', (rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)).find((c) => c[0] === 'latency (from send)'));
      expect(latency![4]).toBe(report.summary.latencyMs.p99!.toFixed(1));
      expect(p.errors).toEqual([]);
    } finally {
      await p.close();
    }
  });

  it('escapes what the report holds: a key with a script in it stays text', async () => {
    const evil = '</script><script>alert(1)</script><img src=x onerror=alert(2)>';
    const copy: RunReport = structuredClone(report);
    copy.detail!.breakdowns.route[0]!.key = evil;
    copy.detail!.scrape[0]!.labels = { model_name: evil };
    copy.facts.target = evil;
    const path = join(tmp.dir, 'evil.html');
    writeFileSync(path, htmlReporter(copy));
    const p = await open(browser, path);
    try {
      await p.page.waitForTimeout(200);
      expect(p.dialogs()).toBe(0);
      expect(p.errors).toEqual([]);
      expect(p.requests).toEqual([`file://${path}`]);
      expect(await p.page.textContent('main')).toContain(evil);
      expect(await p.page.$$eval('.chart canvas', (c) => c.length)).toBe(6);
    } finally {
      await p.close();
    }
  });

  it('md: a pull-request comment with the verdict, the percentile table and escaped cells', () => {
    const copy: RunReport = structuredClone(report);
    copy.detail!.breakdowns.route[0]!.key = 'POST /a|b';
    const md = markdownReporter(copy);
    expect(md).toMatch(/^### tracewarp run `/);
    expect(md).toContain('| ms | p50 | p90 | p95 | p99 | p99.9 | max | n |');
    expect(md).toMatch(/\*\*SLO MISSED\*\*: `ttft_p50<1ms` \([\d.]+ ms, limit 1 ms\)/);
    expect(md).toContain('| POST /a\\|b |');
    expect(md).toContain(`| latency (from send) | ${report.summary.latencyMs.p50!.toFixed(1)} |`);
  });
});
