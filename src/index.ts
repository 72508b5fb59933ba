/**
 * tracewarp's library API: the same pieces the CLI is built from. Times are integer µs unless a name says otherwise.
 */
export { startRecordingProxy, type RecordingProxy, type RecordingProxyOptions } from './capture/proxy.ts';
export { Recorder, type RecorderStats, type RecorderTraceOptions } from './capture/recorder.ts';
export { describeExchange, type DescribeContext } from './capture/describe.ts';
export type { ExchangeSnapshot } from './capture/exchange.ts';
export { TraceReader } from './trace/reader.ts';
export { TraceWriter, type TraceWriterOptions, type WriterHealth, type WriterHealthEvent } from './trace/writer.ts';
export { FORMAT_NAME, FORMAT_VERSION, type TraceMeta } from './trace/schema.ts';
export { readAzureLlm } from './importers/azure-llm.ts';
export { readMooncake, MOONCAKE_BLOCK_TOKENS } from './importers/mooncake.ts';
export { describeRequest, synthesizeRequest, ADAPTERS, PROTOCOL_IDS } from './protocols/index.ts';
export { compilePolicy, loadPolicy, DEFAULT_POLICY, type CompiledPolicy } from './anonymize/policy.ts';
export { Fingerprinter, loadFingerprintKey } from './anonymize/fingerprint.ts';
export { transform, type Step } from './workload/pipeline.ts';
export { parseDrift } from './workload/drift.ts';
export { parseAnomalies } from './workload/anomalies.ts';
export type { Arrival } from './workload/types.ts';
export { synthesizeWorkload, synthesizeItem, WorkloadDigest, requestHash } from './synth/workload.ts';
export { SynthesisPool, type SynthesisPoolOptions } from './synth/pool.ts';
export { replayTrace, startReplay, workloadOf, type ReplayTraceOptions, type ReplayOutcome, type ReplayHandle } from './replay/run.ts';
export { ReplayEngine, type PlannedRequest, type ReplayEngineOptions, type ReplayProgress, type RequestSource, type RawObservation } from './replay/engine.ts';
export { observe } from './replay/observe.ts';
export { LoopMonitor } from './replay/health.ts';
export { assessHealth, markStalls, HEALTH_BOUND_MS } from './metrics/health.ts';
export { RunWriter, readRunFile } from './results/run-file.ts';
export type { RequestResult, RunMeta, ReplayerHealth, LoopHealthSample, SynthesisStats } from './results/types.ts';
export { summarize, type RunSummary, type Percentiles } from './metrics/summary.ts';
export { parseSlo, type Slo } from './metrics/slo.ts';
export { startSim, type SimOptions, type SimServer } from './sim/server.ts';
export { createRng, type Rng } from './rng.ts';
export { TracewarpError, type ErrorCode } from './errors.ts';
export type { TraceRecord, RequestShape, Features, ProtocolId, ErrorKind } from './types.ts';
