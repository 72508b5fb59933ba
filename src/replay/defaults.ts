/**
 * Defaults of a replay's limits: how long a request may take, how a stop ends, when a replay gives up on a target
 * that cannot be reached. One place, so the CLI's help, the library and the README say the same. (Only constants
 * here: the CLI's command table imports this module before any command runs.)
 */

/**
 * Longest wait for an answer's headers after the request was sent, ms. 120 s: an LLM server that queues requests
 * (vLLM, TGI under load) sends a streamed answer's headers only when the request gets a batch slot, and a request
 * queued behind a burst can wait a minute or more for that; a target that accepted the connection and never answers
 * is found within two minutes instead of undici's ten. Non-streamed answers send their headers when the whole
 * generation is done: raise it (`--headers-timeout`) to replay very long non-streamed generations.
 */
export const DEFAULT_HEADERS_TIMEOUT_MS = 120_000;

/**
 * Longest silence between two chunks of an answer's body, ms. 60 s: a streaming LLM answer sends a token every few to
 * a few hundred ms even on a loaded server (a pause for a long prefill of a newly admitted batch takes seconds, not a
 * minute); a stream silent for a minute is stuck. Never a cap on a stream's total duration.
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/**
 * Longest a request may take as a whole, from the socket send to the answer's last byte, ms. 30 min: far above any
 * real LLM answer (a 32k-token generation at 20 tokens/s takes 27 min), so it never cuts a real one, yet a target that
 * trickles bytes forever (each gap under the idle timeout) still cannot keep a replay from ending. 0 disables it.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30 * 60_000;

/**
 * After a stop (the first Ctrl-C, SIGTERM), how long requests in flight may finish before they are cut (recorded as
 * `client_aborted`), ms. 10 s: the recording proxy's grace too, and under the 10 s a container runtime waits between
 * SIGTERM and SIGKILL (`docker stop`), with room left to write the run file.
 */
export const DEFAULT_STOP_GRACE_MS = 10_000;

/**
 * Fail fast: the replay stops (exit 1, naming the cause) when the first this-many results, or every planned request
 * when there are fewer, all failed at the transport level (no HTTP answer: refused, reset, TLS, DNS, timeout, not
 * HTTP). Ten in a row with not one HTTP answer is not a flaky target but a wrong or dead one.
 */
export const FAIL_FAST_REQUESTS = 10;
/**
 * Fail fast also when at least {@link FAIL_FAST_MIN_REQUESTS} results came back, all transport failures, and the
 * run is {@link FAIL_FAST_WINDOW_MS} old (a slow schedule would take long to reach ten).
 */
export const FAIL_FAST_MIN_REQUESTS = 3;
export const FAIL_FAST_WINDOW_MS = 5_000;

/**
 * The target check before the clock starts (one connection: TCP, and the TLS handshake for https://): how long it may
 * take, ms. undici's own connect timeout.
 */
export const TARGET_CHECK_TIMEOUT_MS = 10_000;

/** How often `replay --scrape` polls the target's metrics endpoints, ms (vLLM updates its gauges about this often). */
export const DEFAULT_SCRAPE_INTERVAL_MS = 500;
