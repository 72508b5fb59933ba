import { setPriority } from 'node:os';
import { Worker, type TransferListItem } from 'node:worker_threads';

const BOOT = new URL('./worker-boot.mjs', import.meta.url);

/**
 * Nice value of helper threads (synthesis, describing, file writes): on Linux a thread's priority is its own, so the
 * threads that send, forward and take timestamps win the CPU whenever both want it.
 */
export const HELPER_THREAD_NICE = 10;

/**
 * Starts a worker thread running the TypeScript module `entry` (through tsx, as the CLI runs). The module reads its
 * input as `workerData.data`. The worker's stdout/stderr are the process's.
 */
export function startWorker(entry: URL, data: unknown, transferList?: readonly TransferListItem[]): Worker {
  const w = new Worker(BOOT, { workerData: { entry: entry.href, data }, transferList: transferList as TransferListItem[] | undefined });
  w.once('exit', (code) => exited.set(w, code));
  // An error is reported through 'exit' (and to whoever waits on it): never an uncaught exception of this thread.
  w.on('error', () => undefined);
  return w;
}

/** Workers that have ended, with their exit codes (a wait on one that ended must not wait forever). */
const exited = new WeakMap<Worker, number>();

/** Lowers the calling thread's priority to `nice` (default {@link HELPER_THREAD_NICE}; ignored where the platform refuses). */
export function lowerThisThreadPriority(nice = HELPER_THREAD_NICE): void {
  try {
    setPriority(nice);
  } catch {
    // not permitted or not supported: the thread runs at normal priority
  }
}

/** A Buffer's bytes in an ArrayBuffer of their own (so it can be transferred without detaching a shared pool). */
export function ownBytes(b: Uint8Array): ArrayBuffer {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer) return b.buffer;
  const copy = new Uint8Array(b.byteLength);
  copy.set(b);
  return copy.buffer;
}

/** Waits for a worker's next message of `type`, rejecting on its error or exit — or at once when it has ended. */
export function firstMessage<T extends { type: string }>(w: Worker, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    if (exited.has(w)) return reject(new Error(`the worker thread ended (exit code ${exited.get(w)}) before it sent '${type}'`));
    const onMessage = (m: T) => {
      if (m.type !== type) return;
      cleanup();
      resolve(m);
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onExit = (code: number) => {
      cleanup();
      reject(new Error(`the worker thread ended (exit code ${code}) before it sent '${type}'`));
    };
    const cleanup = () => {
      w.off('message', onMessage);
      w.off('error', onError);
      w.off('exit', onExit);
    };
    w.on('message', onMessage);
    w.on('error', onError);
    w.on('exit', onExit);
  });
}
