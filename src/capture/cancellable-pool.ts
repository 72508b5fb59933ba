import { Pool, type Dispatcher } from 'undici';

/** Request header the proxy sets to name an exchange to its pool; stripped before anything is sent upstream. */
export const EXCHANGE_HEADER = 'x-tracewarp-exchange';

/**
 * An undici Pool whose requests can be cancelled by exchange id before the upstream has answered: a client that goes
 * away while the upstream is still thinking (no response headers yet) must not leave that work running. After the
 * headers, cancelling is done by destroying the response stream, as usual.
 */
export class CancellablePool extends Pool {
  private readonly aborts = new Map<string, (err: Error) => void>();

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const headers = opts.headers as Record<string, string | string[] | undefined> | null | undefined;
    const id = headers && !Array.isArray(headers) ? headers[EXCHANGE_HEADER] : undefined;
    if (typeof id !== 'string') return super.dispatch(opts, handler);
    const { [EXCHANGE_HEADER]: _drop, ...rest } = headers!;
    // reply-from's undici requests use the handler interface with onConnect(abort) (undici 7 RequestHandler).
    const h = handler as unknown as {
      onConnect?: (abort: (err?: Error) => void, context?: unknown) => void;
      onHeaders?: (...args: unknown[]) => boolean;
      onError?: (err: Error) => void;
    };
    const onConnect = h.onConnect;
    const onHeaders = h.onHeaders;
    const onError = h.onError;
    if (onConnect) h.onConnect = (abort: (err?: Error) => void, context?: unknown) => {
      this.aborts.set(id, abort);
      return onConnect.call(h, abort, context);
    };
    if (onHeaders) h.onHeaders = (...args: unknown[]) => {
      this.aborts.delete(id);
      return onHeaders.apply(h, args);
    };
    if (onError) h.onError = (err: Error) => {
      this.aborts.delete(id);
      return onError.call(h, err);
    };
    return super.dispatch({ ...opts, headers: rest }, h as unknown as Dispatcher.DispatchHandler);
  }

  /** Aborts exchange `id`'s upstream request if it has not been answered yet; forgets it either way. */
  cancel(id: string): void {
    const abort = this.aborts.get(id);
    this.aborts.delete(id);
    abort?.(new Error('client aborted before the upstream answered'));
  }
}
