/** Defaults of the CLI that more than one command (or the help text) names; the library's are beside their code. */

/** The demo's default trace file, replaced on each run. */
export const DEMO_TRACE = 'traces/demo.trace.db';
/** The demo's default run file, replaced on each run. */
export const DEMO_RUN = 'runs/demo.run.db';
/** Source formats `tracewarp import` reads. */
export const IMPORT_FORMATS = ['azure-llm', 'mooncake', 'bailian'] as const;
