import { DEFAULT_PREFIX_CACHE_TOKENS } from '../sim/prefix-cache.ts';
import { Command, CommanderError, Help, InvalidArgumentError, Option } from 'commander';
import { TracewarpError } from '../errors.ts';
import { TOOL_VERSION } from '../version.ts';
import { DEFAULT_PREFIX_BLOCK_TOKENS, FINGERPRINT_KEY_ENV } from '../anonymize/fingerprint.ts';
import { PROTOCOL_IDS } from '../protocols/ids.ts';
import { durationArg, headerArg, listArg, warmupArg, scrapeArg, intArg, modelMapArg, numberArg, parseListen, pathMapArg, percentArg, selectorArg, sessionKeyArg, thinkTimeArg, urlArg, workersArg } from './args.ts';
import { DEMO_RUN, DEMO_TRACE, IMPORT_FORMATS } from './defaults.ts';
import { DEFAULT_SCRAPE_INTERVAL_MS, DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_STOP_GRACE_MS } from '../replay/defaults.ts';
import { type Output, processOutput } from './output.ts';
import { parseSpeed, workloadHelp } from './workload.ts';

// Each command's module is loaded when it runs, so a command carries only what it uses: `replay` and `record` keep
// the tokenizer and the simulator out of the thread that sends or forwards (a smaller heap, shorter GC pauses).

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** `--speed`, validated as the workload pipeline does. */
const speedArg = (text: string): number => {
  try {
    return parseSpeed(text);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};

/** Adds the workload transformation options shared by `plan` and `replay` (their order is read from argv). */
function withWorkloadOptions(c: Command): Command {
  for (const [flags, help] of workloadHelp()) {
    if (flags.startsWith('--speed')) c.option(flags, help, speedArg, 1);
    else if (flags.startsWith('--drift') || flags.startsWith('--anomaly')) c.option(flags, help, collect);
    else c.option(flags, help);
  }
  return c;
}

/** Adds how a trace's sessions are replayed (`replay`, `sweep`): closed or open loop, think time, history. */
function withSessionOptions(c: Command): Command {
  return c
    .addOption(new Option('--sessions <mode>', 'closed: each follow-up turn is sent its think time after its parent\'s answer ended (the default when the trace has sessions); open: every request at its own time').choices(['closed', 'open']))
    .option('--think-time <how>', 'closed sessions: recorded (human think times, even at --speed 10), scaled (divided by the speed), zero, or max:D (recorded, capped at D)', thinkTimeArg)
    .addOption(new Option('--history <how>', "a follow-up turn's prompt: recorded (begins with its parent's prompt and a stand-in of its answer, as production's prefix caches saw) or none (every prompt alone)").choices(['recorded', 'none']));
}

/**
 * Adds the options that choose which recorded requests are sent and how they are addressed, shared by `plan` and
 * `replay` (each changes the workload's digest).
 */
function withSelectionOptions(c: Command): Command {
  return c
    .option('--only <selector>', "replay only recorded requests matching it, e.g. 'status=2xx,protocol=openai-chat' (repeatable: any of them)", selectorArg('--only'))
    .option('--exclude <selector>', "leave out recorded requests matching it, e.g. 'route=/v1/models' (repeatable)", selectorArg('--exclude'))
    .option('--model <name>', "send every request to this model (the 'model' parameter and the model in the path)")
    .option('--path-map <from=to>', "send recorded paths beginning with FROM (as 'inspect' lists routes) to TO instead (repeatable)", pathMapArg)
    .option('--model-map <from=to>', "send requests for model FROM (as 'inspect' lists models, e.g. '{model:3fa2b1c0}') to the target's model TO (repeatable)", modelMapArg)
    .option('--placeholder-segments', "send path segments the trace keeps as fingerprints ('{seg:…}') as placeholders 'seg-…'")
    .addOption(new Option('--output-length <policy>', 'LLM answers asked for the recorded output length, or the limit the client sent').choices(['recorded', 'as-sent']).default('recorded'))
    .option('--force-output-length', 'LLM requests also send min_tokens = max_tokens and ignore_eos (vLLM)')
    .option('--limit <n>', 'replay only the first N requests', intArg('--limit', 1));
}

/** Builds the command tree. Actions store their exit code in `result.code`. */
function program(out: Output, result: { code: number }, argv: readonly string[]): Command {
  const p = new Command('tracewarp')
    .description('Record production ML inference traffic anonymously; replay it time-warped against other model servers.')
    .version(TOOL_VERSION)
    .exitOverride()
    // Usage errors are printed by `main`, in the one style every usage error has (commander's own line is dropped).
    .configureOutput({ writeOut: (s) => out.out(s.trimEnd()), writeErr: (s) => out.err(s.trimEnd()), outputError: () => undefined })
    // `--help` marks the options a command cannot run without (subcommands inherit this).
    .configureHelp({ optionDescription: (o) => `${o.mandatory ? '(required) ' : ''}${new Help().optionDescription(o)}` });

  p.command('sim')
    .description('start the bundled OpenAI-compatible LLM server simulator (continuous batching)')
    .addOption(new Option('--listen <host:port>', 'address to listen on (port 0 picks a free port)').argParser(parseListen).default({ host: '127.0.0.1', port: 8000 }, '127.0.0.1:8000'))
    .option('--seed <n>', 'seed for generated text and default output lengths', intArg('--seed', 0), 1)
    .option('--max-batch <n>', 'sequences that run together (B)', intArg('--max-batch', 1), 64)
    .option('--prefill-us-per-token <us>', 'prefill cost per prompt token (µs)', numberArg('--prefill-us-per-token', 0), 40)
    .option('--decode-step-ms <ms>', 'decode step with one running sequence (ms)', numberArg('--decode-step-ms', 0, Infinity, true), 8)
    .option('--per-seq-step-ms <ms>', 'extra step time per additional running sequence (ms)', numberArg('--per-seq-step-ms', 0), 0.15)
    .option('--model <name>', 'model id served', 'tracewarp-sim')
    .option('--max-model-len <tokens>', 'context window: prompt + max_tokens above it gets a 400', intArg('--max-model-len', 1), 131_072)
    .option('--kv-cache-tokens <tokens>', 'a bounded KV cache: admission waits for room, overflow preempts the newest sequence (0: unbounded)', intArg('--kv-cache-tokens', 0), 0)
    .option('--prefix-cache-tokens <tokens>', 'prefix cache of 16-token blocks, LRU: a cached prompt prefix costs no prefill (0: off)', intArg('--prefix-cache-tokens', 0), DEFAULT_PREFIX_CACHE_TOKENS)
    .option('--model-load <duration>', 'model load before the first answer; requests queue meanwhile (ms, or with a unit)', durationArg('--model-load', 'ms', 0), 0)
    .action(async (o) => {
      const { runSim } = await import('./sim.ts');
      result.code = await runSim({ host: o.listen.host, port: o.listen.port, seed: o.seed, maxBatch: o.maxBatch, prefillUsPerToken: o.prefillUsPerToken, decodeStepMs: o.decodeStepMs, perSeqStepMs: o.perSeqStepMs, model: o.model, maxModelLen: o.maxModelLen, kvCacheTokens: o.kvCacheTokens, modelLoadMs: o.modelLoad, prefixCacheTokens: o.prefixCacheTokens }, out);
    });

  p.command('record')
    .description('run the recording reverse proxy in front of an inference server; Ctrl-C stops and closes the trace')
    .requiredOption('--upstream <url>', 'the inference server to forward to', urlArg('--upstream'))
    .addOption(new Option('--listen <host:port>', 'address to listen on (port 0 picks a free port)').argParser(parseListen).default({ host: '127.0.0.1', port: 8080 }, '127.0.0.1:8080'))
    .option('--out <file>', 'trace file to write', 'traces/capture.trace.db')
    .option('--force', 'overwrite an existing trace file')
    .option('--max-capture-bytes <n>', 'request/response bytes held per exchange to describe it', intArg('--max-capture-bytes', 0), 16 << 20)
    .option('--max-record-queue <bytes>', 'captured bytes that may wait for the recorder thread; past that, exchanges are forwarded unrecorded and counted', intArg('--max-record-queue', 1 << 20), 256 << 20)
    .option('--headers-timeout <duration>', 'time allowed for upstream response headers (ms, or with a unit: 10s)', durationArg('--headers-timeout', 'ms', 1), 600_000)
    .option('--idle-timeout <duration>', 'longest silence between answer chunks (ms, or with a unit); never a total-duration cap', durationArg('--idle-timeout', 'ms', 1), 300_000)
    .option('--grace <duration>', 'on shutdown, how long in-flight exchanges may finish (ms, or with a unit)', durationArg('--grace', 'ms', 0), 10_000)
    .option('--capture-raw', 'ALSO STORE RAW REQUESTS (URLs, headers with credentials, bodies): explicit opt-in, the trace is then secret')
    .option('--fingerprint-key-file <file>', `key for prompt fingerprints (else $${FINGERPRINT_KEY_ENV}, else a random per-trace key)`)
    .option('--prefix-block-tokens <n>', 'tokens per fingerprinted prompt prefix block', intArg('--prefix-block-tokens', 1), DEFAULT_PREFIX_BLOCK_TOKENS)
    .addOption(new Option('--protocol <id>', 'describe every request with this adapter instead of detecting one').choices(PROTOCOL_IDS))
    .option('--policy <file>', 'anonymization policy (YAML or JSON): what else to keep or drop')
    .option('--session-key <key>', 'what names a request\'s session: header:NAME or body:PATH (repeatable, first match wins); stored only as a session number', sessionKeyArg)
    .option('--no-sessions', 'record every request on its own (no session keys, no inferred sessions)')
    .action(async (o) => {
      const { runRecord } = await import('./record.ts');
      result.code = await runRecord({ upstream: o.upstream, host: o.listen.host, port: o.listen.port, out: o.out, force: o.force, maxCaptureBytes: o.maxCaptureBytes, maxRecordQueueBytes: o.maxRecordQueue, headersTimeoutMs: o.headersTimeout, idleTimeoutMs: o.idleTimeout, graceMs: o.grace, captureRaw: o.captureRaw, fingerprintKeyFile: o.fingerprintKeyFile, prefixBlockTokens: o.prefixBlockTokens, protocol: o.protocol, policyFile: o.policy, sessionKeys: o.sessionKey, inferSessions: o.sessions }, out);
    });

  p.command('import')
    .description(`convert a public production trace into a trace file (formats: ${IMPORT_FORMATS.join(', ')})`)
    .addArgument(p.createArgument('<format>', 'source format').choices(IMPORT_FORMATS))
    .argument('<file>', 'source file')
    .requiredOption('--out <file>', 'trace file to write')
    .option('--force', 'overwrite an existing trace file')
    .option('--model <name>', 'model name written into each request', 'default')
    .option('--no-stream', 'imported requests ask for a non-streamed answer')
    .option('--block-tokens <n>', 'tokens per hash_ids prefix block (default: mooncake 512, bailian 16)', intArg('--block-tokens', 1))
    .action(async (format: string, file: string, o) => {
      const { runImport } = await import('./import.ts');
      await runImport(format, file, { out: o.out, force: o.force, model: o.model, stream: o.stream, blockTokens: o.blockTokens }, out);
      result.code = 0;
    });

  withSessionOptions(withSelectionOptions(withWorkloadOptions(p.command('plan')
    .description('print the transformed workload without sending anything: counts, rate over time, features before/after, digest')
    .argument('<trace>', 'trace file'))))
    .option('--seed <n>', 'seed for every random choice', intArg('--seed', 0), 1)
    .option('--json', 'print one JSON object')
    .action(async (trace: string, o) => {
      const { runPlan } = await import('./plan.ts');
      runPlan(trace, argv, { seed: o.seed, json: o.json, scenario: o.scenario, only: o.only, exclude: o.exclude, model: o.model, pathMap: o.pathMap, modelMap: o.modelMap, placeholderSegments: o.placeholderSegments, outputLength: o.outputLength, forceOutputLength: o.forceOutputLength, limit: o.limit, history: o.history }, out);
      result.code = 0;
    });

  withSessionOptions(withSelectionOptions(withWorkloadOptions(p.command('replay')
    .description('replay a trace open-loop against a target, transformed; writes a run file and prints the summary')
    .argument('<trace>', 'trace file'))))
    .requiredOption('--target <url>', 'the server under test', urlArg('--target'))
    .option('--seed <n>', 'seed for every random choice', intArg('--seed', 0), 1)
    .option('--out <file>', 'run file to write (default runs/<trace>-<time>.run.db)')
    .option('--force', 'overwrite an existing run file')
    .option('--max-in-flight <n>', 'cap on requests in flight', intArg('--max-in-flight', 1))
    .addOption(new Option('--cap-policy <policy>', 'a due request at the cap waits (queue) or is not sent (drop)').choices(['queue', 'drop']).default('queue'))
    .option('--header <name: value>', 'add a header to every request, e.g. credentials for the target (repeatable)', headerArg)
    .option('--warmup <duration>', 'the first D of the schedule (with a unit: 30s, 2m) are replayed but left out of the headline figures and the SLO, and shown as the cold start; a bare number is the old --warm-connections', warmupArg)
    .option('--warm-connections <n>', 'connections opened with GET / before the first send (0: none)', intArg('--warm-connections', 0), 8)
    .option('--slo <objectives>', "objectives: per request (goodput) and for the run, e.g. 'ttft<500ms,tpot<50ms,p99<2s,error_rate<1%' (exit 1 when a run objective is missed)")
    .option('--scrape <url,...>', "the target's Prometheus metrics endpoints (e.g. http://host:8000/metrics) to poll during the run, kept in the run file on its clock (repeatable)", scrapeArg)
    .option('--scrape-interval <duration>', 'how often to poll --scrape (ms, or with a unit)', durationArg('--scrape-interval', 'ms', 50), DEFAULT_SCRAPE_INTERVAL_MS)
    .option('--workers <n|auto>', 'sending loops, each a thread on the same schedule (auto: enough for the peak rate)', workersArg, 'auto')
    .option('--synth-threads <n>', 'threads that synthesize bodies ahead of their send time (default: cores − 1)', intArg('--synth-threads', 1, 64))
    .option('--timeout <duration>', 'longest a request may take, from its send to the last byte of its answer (ms, or with a unit: 30m; 0: none)', durationArg('--timeout', 'ms', 0), DEFAULT_REQUEST_TIMEOUT_MS)
    .option('--headers-timeout <duration>', 'longest wait for an answer\'s headers after the send (ms, or with a unit: 2m; 0: none)', durationArg('--headers-timeout', 'ms', 0), DEFAULT_HEADERS_TIMEOUT_MS)
    .option('--idle-timeout <duration>', 'longest silence between two chunks of an answer (ms, or with a unit: 60s; 0: none); never a cap on a stream\'s duration', durationArg('--idle-timeout', 'ms', 0), DEFAULT_IDLE_TIMEOUT_MS)
    .option('--grace <duration>', 'after the first Ctrl-C or SIGTERM, how long requests in flight may finish before they are cut (ms, or with a unit)', durationArg('--grace', 'ms', 0), DEFAULT_STOP_GRACE_MS)
    .option('--no-client-aborts', 'replay requests whose recorded client gave up whole (default: cut them as long after the send as that client waited)')
    .option('--keep-going', 'replay even when the target check fails or the first requests all fail at the transport level (default: stop, exit 1)')
    .option('--json', 'print the summary as one JSON object')
    .option('--quiet', 'no progress output')
    .action(async (trace: string, o) => {
      const { runReplay } = await import('./replay.ts');
      const r = await runReplay(trace, { target: o.target, speed: o.speed, argv, scenario: o.scenario, seed: o.seed, out: o.out, force: o.force, maxInFlight: o.maxInFlight, capPolicy: o.capPolicy, model: o.model, limit: o.limit, json: o.json, quiet: o.quiet, headers: o.header, warmup: o.warmup?.connections ?? o.warmConnections, warmupUs: o.warmup?.durationUs, slo: o.slo, forceOutputLength: o.forceOutputLength, workers: o.workers, synthThreads: o.synthThreads, only: o.only, exclude: o.exclude, pathMap: o.pathMap, modelMap: o.modelMap, placeholderSegments: o.placeholderSegments, outputLength: o.outputLength, clientAborts: o.clientAborts, requestTimeoutMs: o.timeout, headersTimeoutMs: o.headersTimeout, idleTimeoutMs: o.idleTimeout, graceMs: o.grace, failFast: !o.keepGoing, scrape: o.scrape, scrapeIntervalMs: o.scrapeInterval, sessions: o.sessions, thinkTime: o.thinkTime, history: o.history }, out);
      // 0: every objective met (or none given); 1: an objective missed; 130: interrupted.
      result.code = r.interrupted ? 130 : r.summary.sloMet === false ? 1 : 0;
    });

  withSessionOptions(withWorkloadOptions(p.command('sweep')
    .description('capacity on the recorded workload: replay it at growing load (listed, or searched) until the SLO fails')
    .argument('<trace>', 'trace file')))
    .requiredOption('--target <url>', 'the server under test', urlArg('--target'))
    .requiredOption('--slo <objectives>', "run objectives each step must meet, e.g. 'p99<800ms,error_rate<1%'")
    .addOption(new Option('--by <how>', 'what grows the load: speed (time-warp), amplify (more requests, same timing) or rate (req/s)').choices(['speed', 'amplify', 'rate']).default('speed'))
    .option('--speeds <list>', 'the loads to measure, comma-separated: speed or amplification factors, or req/s with --by rate', listArg('--speeds'))
    .option('--search', 'search for the capacity: double until the SLO fails, then bisect (the default without --speeds)')
    .option('--precision <percent>', 'stop the search when the last pass and the first fail are this close (e.g. 5%)', percentArg('--precision'))
    .option('--start <load>', 'first load of the search (default 1, or the workload\'s mean rate with --by rate)', numberArg('--start', 0, Infinity, true))
    .option('--step-duration <duration>', 'measured part of each step (s, or with a unit)', durationArg('--step-duration', 's', 1))
    .option('--warmup <duration>', 'replayed before each step\'s measured part and reported apart (s, or with a unit)', durationArg('--warmup', 's', 0))
    .option('--seed <n>', 'seed for every random choice', intArg('--seed', 0), 1)
    .option('--out <dir>', 'folder for the steps\' run files (default: none kept)')
    .option('--html <file>', 'also write the sweep as one self-contained HTML file: latency against load (the hockey stick), throughput and goodput, the steps')
    .option('--scrape <url,...>', "the target's Prometheus endpoints: scraped during each step, and polled between steps until its queue is empty", scrapeArg)
    .option('--scrape-interval <duration>', 'how often to poll --scrape (ms, or with a unit)', durationArg('--scrape-interval', 'ms', 50), DEFAULT_SCRAPE_INTERVAL_MS)
    .option('--header <name: value>', 'add a header to every request (repeatable)', headerArg)
    .option('--max-in-flight <n>', 'cap on requests in flight', intArg('--max-in-flight', 1))
    .option('--workers <n|auto>', 'sending loops', workersArg, 'auto')
    .option('--json', 'print the result as one JSON object')
    .option('--quiet', 'no progress output')
    .action(async (trace: string, o) => {
      const { runSweepCommand } = await import('./sweep.ts');
      const r = await runSweepCommand(trace, { target: o.target, slo: o.slo, by: o.by, speeds: o.speeds, search: o.search, precision: o.precision, start: o.start, stepDurationUs: o.stepDuration === undefined ? undefined : o.stepDuration * 1e6, warmupUs: o.warmup === undefined ? undefined : o.warmup * 1e6, seed: o.seed, out: o.out, html: o.html, json: o.json, quiet: o.quiet, argv, scenario: o.scenario, scrape: o.scrape, scrapeIntervalMs: o.scrapeInterval, headers: o.header, maxInFlight: o.maxInFlight, workers: o.workers, sessions: o.sessions, thinkTime: o.thinkTime, history: o.history }, out);
      result.code = r.code;
    });

  p.command('report')
    .description('the report of a run file, or of several merged (shards, repeats): text, JSON, Markdown or one self-contained HTML file')
    .argument('<runs...>', 'run files (several are merged into one report)')
    .option('--format <format>', 'text, json, md (a pull-request comment), html (charts; one file, no network) or csv (the per-second timeline)', 'text')
    .option('--out <file>', 'write the report to this file instead of stdout')
    .option('--slo <objectives>', "objectives (default: the replay's), e.g. 'p99<800ms,ttft<500ms,error_rate<1%'")
    .option('--warmup <duration>', "leave the first D of the schedule out of the figures and the SLO (default: the replay's --warmup; 0 for none)", durationArg('--warmup', 's', 0))
    .option('--json', 'the same as --format json')
    .action(async (runs: string[], o) => {
      const { runReport } = await import('./report.ts');
      result.code = await runReport(runs, { ...o, warmupS: o.warmup, format: o.json && o.format === 'text' ? 'json' : o.format }, out);
    });

  p.command('compare')
    .description('compare two runs (or a captured trace, as today\'s baseline, with a run): each metric with its 95 % interval and a verdict')
    .argument('<base>', 'base: a run file, or a captured trace')
    .argument('<candidate>', 'candidate: a run file')
    .option('--seed <n>', 'seed of the bootstrap', intArg('--seed', 0), 1)
    .option('--max-regression <allowances>', "fail (exit 1) when a metric got worse by more than allowed, e.g. 'p99:+10%,ttft_p95:+50ms,error_rate:+1%'")
    .option('--slo <objectives>', "run objectives judged on both runs, e.g. 'p99<800ms,error_rate<1%' (exit 1 when the candidate misses one)")
    .option('--format <format>', 'text, json or md (a pull-request comment)', 'text')
    .option('--json', 'the same as --format json')
    .action(async (base: string, candidate: string, o) => {
      const { runCompare } = await import('./compare.ts');
      result.code = runCompare(base, candidate, { ...o, format: o.json && o.format === 'text' ? 'json' : o.format }, out);
    });

  p.command('inspect')
    .description('describe a trace: version, source, counts, rates, statuses, feature distributions')
    .argument('<trace>', 'trace file')
    .option('--json', 'print one JSON object')
    .action(async (trace: string, o) => {
      const { runInspect } = await import('./inspect.ts');
      result.code = runInspect(trace, o, out);
    });

  p.command('demo')
    .description('run the whole job on the bundled simulator and real trace slice: record, replay at 2×, report')
    .option('--duration <duration>', 'how much of the Azure trace to drive through the proxy (seconds, or with a unit: 2m; at most 300 s)', durationArg('--duration', 's', 1, 300), 30)
    .option('--speed <factor>', 'replay time-warp factor', speedArg, 2)
    .option('--seed <n>', 'seed', intArg('--seed', 0), 1)
    .option('--trace <file>', 'where the recorded trace goes (the default file is replaced on each run)', DEMO_TRACE)
    .option('--run <file>', 'where the run file goes (the default file is replaced on each run)', DEMO_RUN)
    .option('--force', 'replace an existing --trace or --run file of your choosing')
    .option('--slo <objectives>', 'goodput objectives for the report', 'ttft<500ms,tpot<25ms')
    .option('--json', 'print the replay summary as one JSON object')
    .action(async (o) => {
      const { runDemo } = await import('./demo.ts');
      result.code = await runDemo({ durationS: o.duration, speed: o.speed, seed: o.seed, trace: o.trace, run: o.run, force: o.force, json: o.json, slo: o.slo }, out);
    });
  return p;
}

/** A usage error as every one is printed: `tracewarp: <problem>` and where the usage is (`tracewarp CMD --help`). */
function usageLine(message: string, argv: readonly string[]): string {
  const cmd = COMMANDS.includes(argv[0] ?? '') ? `${argv[0]} ` : '';
  return `tracewarp: ${message}\n(run 'tracewarp ${cmd}--help' for usage)`;
}

/** The commands, for the usage hint. */
const COMMANDS = ['sim', 'record', 'import', 'inspect', 'plan', 'replay', 'report', 'compare', 'demo'];

/**
 * Runs the CLI with `argv` (without `node` and the script). Returns the exit code: 0 success; 1 an objective missed (`--slo`; `demo`: a request failed); 2 misuse; 3 any
 * other failure (a trace or run file that cannot be read, a target that cannot be reached, …); 130 interrupted.
 * Errors print as one line `tracewarp: <message>`; nothing is thrown.
 */
export async function main(argv: string[], out: Output = processOutput): Promise<number> {
  const result = { code: 0 };
  try {
    await program(out, result, argv).parseAsync(argv, { from: 'user' });
    return result.code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      out.err(usageLine(err.message.replace(/^error: /, ''), argv));
      return 2;
    }
    if (err instanceof TracewarpError && err.code === 'TW_USAGE') {
      out.err(usageLine(err.message, argv));
      return 2;
    }
    if (err instanceof TracewarpError) {
      // The stable code for scripts, except on usage errors (whose exit code 2 says it).
      out.err(`tracewarp: ${err.message}${err.code !== 'TW_USAGE' ? ` [${err.code}]` : ''}`);
      return err.exitCode;
    }
    out.err(`tracewarp: unexpected error: ${(err as Error)?.stack ?? String(err)}`);
    return 3;
  }
}
