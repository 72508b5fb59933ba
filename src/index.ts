/**
 * tracewarp's library API: the same pieces the CLI is built from. Times are integer µs unless a name says otherwise.
 */
export { startRecordingProxy, type RecordingProxy, type RecordingProxyOptions } from './capture/proxy.ts';
export { TraceReader } from './trace/reader.ts';
export { TraceWriter, type TraceWriterOptions } from './trace/writer.ts';
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
export { synthesizeWorkload, WorkloadDigest } from './synth/workload.ts';
export { ReplayEngine, type PlannedRequest, type ReplayEngineOptions } from './replay/engine.ts';
export { RunWriter, readRunFile } from './results/run-file.ts';
export type { RequestResult, RunMeta } from './results/types.ts';
export { summarize, type RunSummary, type Percentiles } from './metrics/summary.ts';
export { parseSlo, type Slo } from './metrics/slo.ts';
export { startSim, type SimOptions, type SimServer } from './sim/server.ts';
export { createRng, type Rng } from './rng.ts';
export { TracewarpError, type ErrorCode } from './errors.ts';
export type { TraceRecord, RequestShape, Features, ProtocolId, ErrorKind } from './types.ts';
