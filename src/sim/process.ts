import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TracewarpError } from '../errors.ts';

/** How long a sim process may take to say it is listening, ms (tsx compiles the sources on the first start). */
export const SIM_START_TIMEOUT_MS = 30_000;

/**
 * Starts `tracewarp sim` in a process of its own on 127.0.0.1 (port 0), so its engine's timers never share an event
 * loop with the replayer that measures it. Resolves with its URL once it prints its `listening on` line.
 * @throws TracewarpError `TW_LISTEN` when it does not start in time or exits first.
 */
export function startSimProcess(args: readonly string[] = []): Promise<{ url: string; close: () => Promise<void> }> {
  const bin = fileURLToPath(new URL('../../bin/tracewarp.js', import.meta.url));
  const child = spawn(process.execPath, [bin, 'sim', '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const close = () => new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      void close();
      reject(new TracewarpError('TW_LISTEN', `sim did not start within ${SIM_START_TIMEOUT_MS / 1000} s`));
    }, SIM_START_TIMEOUT_MS);
    child.stdout!.on('data', (c: Buffer) => {
      text += c.toString('utf8');
      const m = /listening on (http:\/\/\S+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1]!, close });
      }
    });
    child.stderr!.resume();
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new TracewarpError('TW_LISTEN', `sim exited (code ${code}) before it was listening`));
    });
  });
}
