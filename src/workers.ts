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
  return new Worker(BOOT, { workerData: { entry: entry.href, data }, transferList: transferList as TransferListItem[] | undefined });
}

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

/** Waits for a worker's first message of `type` (its readiness), rejecting on its error or exit. */
export function firstMessage<T extends { type: string }>(w: Worker, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
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
      reject(new Error(`worker exited with code ${code} before it was ready`));
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
