import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import type { Output } from '../src/cli/output.ts';
import { importedChatRecord } from '../src/importers/common.ts';
import { TraceWriter } from '../src/trace/writer.ts';
import type { TraceRecord } from '../src/types.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BIN = join(ROOT, 'bin/tracewarp.js');
export const FIXTURES = join(ROOT, 'fixtures');
/** The workspace's shared folder (real traces, PII corpus); present beside the clone in CI and for developers. */
export const SHARED = join(ROOT, '../shared');

/** A fresh temporary folder, removed by the returned cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'tracewarp-test-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** An Output that collects lines. */
export function captureOutput(): Output & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l), tty: false };
}

/** Starts a node:http server on 127.0.0.1:0 with `handler`; resolves with its URL and a close function. */
export async function startUpstream(handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, res, Buffer.concat(chunks)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const a = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${a.port}`,
    server,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** Runs the real CLI in a child process; resolves with its exit code and output. Killed after `timeoutMs`. */
export function runCli(args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts a long-running CLI command and resolves once it printed its `listening on http://…` line. */
export function startCli(args: string[], opts: { cwd?: string } = {}): Promise<{ child: ChildProcess; url: string; output: () => { stdout: string; stderr: string }; exited: Promise<number | null> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no 'listening on' line within 20 s; stderr: ${stderr}`));
    }, 20_000);
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.on('data', (d) => {
      stdout += d;
      const m = /listening on (http:\/\/\S+)/.exec(stdout);
      if (m) {
        clearTimeout(t);
        resolve({ child, url: m[1]!, output: () => ({ stdout, stderr }), exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(t);
      reject(new Error(`exited with ${code} before listening; stderr: ${stderr}`));
    });
  });
}

/** Polls until `cond` holds (records are handed over when the response has closed, a tick after the client sees its end). */
export async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Writes a trace of chat requests at the given offsets (µs), each with the given prompt and output tokens. */
export function writeChatTrace(path: string, offsetsUs: number[], opts: { promptTokens?: number; outputTokens?: number; stream?: boolean; model?: string } = {}): void {
  const w = new TraceWriter(path, { source: 'test', anchorWallUs: 0, anonymization: null });
  offsetsUs.forEach((o, i) => w.add(importedChatRecord(i + 1, o, opts.promptTokens ?? 20, opts.outputTokens ?? 5, { model: opts.model ?? 'tracewarp-sim', stream: opts.stream ?? false })));
  w.close();
}

/**
 * The first record after index `from` that `pred` picks, once it has come: records reach `onRecord` from the recorder
 * thread a little after the exchange ended, and the previous test's may still be arriving.
 */
export async function recordOf(records: readonly TraceRecord[], from: number, pred: (r: TraceRecord) => boolean, timeoutMs = 5000): Promise<TraceRecord> {
  await waitFor(() => records.slice(from).some(pred), timeoutMs);
  return records.slice(from).find(pred)!;
}

/** Debian's Chromium, which CI installs (`.ci/run`): HTML reports are tested in a real browser. */
export const CHROMIUM = '/usr/bin/chromium';

/** Launches headless Chromium; a missing browser is a failure, never a skip. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (the HTML report is tested in a real browser)`);
  return chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}

/** Opens a local file in a fresh context, collecting console errors, page errors, requests and dialogs. */
export async function openPage(browser: Browser, path: string, javaScriptEnabled = true) {
  const context = await browser.newContext({ javaScriptEnabled, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  let dialogs = 0;
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => requests.push(r.url()));
  page.on('dialog', (d) => { dialogs++; void d.dismiss(); });
  await page.goto(`file://${path}`);
  await page.waitForLoadState('load');
  return { page, errors, requests, dialogs: () => dialogs, close: () => context.close() };
}

