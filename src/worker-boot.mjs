// Entry of every worker thread: registers tsx (as bin/tracewarp.js does for the main thread) so the TypeScript module
// named in workerData.entry runs as it is, then imports it.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
