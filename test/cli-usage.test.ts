import { describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.ts';
import { captureOutput } from './helpers.ts';

// Issue 11: `--help` marks required options, and every usage error — commander's and tracewarp's own — comes in one
// style: `tracewarp: <problem>` and the command's `--help` hint, exit 2.

describe('usage errors and --help', () => {
  it.each([
    [['sim', '--port', '1'], "tracewarp: unknown option '--port'", 'sim'],
    [['replay', 'x.trace.db'], "tracewarp: required option '--target <url>' not specified", 'replay'],
    [['report', 'x.run.db', '--format', 'pdf'], "tracewarp: --format: 'pdf' is not one of text, json, md, html, csv", 'report'],
    [['replay', 'x.trace.db', '--target', 'http://127.0.0.1:1', '--slo', 'p99<fast'], 'tracewarp: --slo:', 'replay'],
    [['bogus'], "tracewarp: unknown command 'bogus'", null],
  ])('%j exits 2 with the problem and the help hint', async (argv, problem, cmd) => {
    const out = captureOutput();
    expect(await main(argv, out)).toBe(2);
    const [first, hint, ...rest] = out.stderr.join('\n').split('\n');
    expect(first!.startsWith(problem)).toBe(true);
    expect(hint).toBe(`(run 'tracewarp ${cmd ? `${cmd} ` : ''}--help' for usage)`);
    expect(rest).toEqual([]);
  });

  it('--help marks the options a command cannot run without', async () => {
    for (const [cmd, flag] of [['replay', '--target <url>'], ['record', '--upstream <url>'], ['import', '--out <file>']] as const) {
      const out = captureOutput();
      expect(await main([cmd, '--help'], out)).toBe(0);
      expect(out.stdout.join('\n')).toMatch(new RegExp(`${flag.replace(/[<>]/g, '.')}\\s+\\(required\\) `));
    }
    const out = captureOutput();
    await main(['replay', '--help'], out);
    expect(out.stdout.join('\n')).not.toMatch(/--speed <factor>\s+\(required\)/);
  });
});
