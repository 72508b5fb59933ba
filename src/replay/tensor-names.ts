import { request } from 'undici';
import { pathOnTarget } from '../address.ts';
import type { TraceReader } from '../trace/reader.ts';
import { routeForTarget } from '../synth/target.ts';
import type { SynthOptions } from '../protocols/adapter.ts';
import type { Arrival } from '../workload/types.ts';

/** How long the target's model metadata may take to answer, ms. */
export const METADATA_TIMEOUT_MS = 5000;

/** The KServe / Open Inference Protocol routes whose model metadata lists input names (`GET /v2/models/{m}[/versions/{v}]`). */
const OIP_ROUTE = /^(\/v2\/models\/[^/{}]+(?:\/versions\/[^/{}]+)?)\/(?:infer|generate|generate_stream)$/;

/** Routes (as sent) whose recorded input tensors have names the trace did not keep, with those inputs' positions. */
export function templatedTensorRoutes(reader: TraceReader, arrivals: readonly Arrival[], map: Pick<SynthOptions, 'model' | 'pathMap' | 'modelMap' | 'placeholderSegments'>): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const seen = new Set<string>();
  for (const a of arrivals) {
    if ((a.protocol !== 'kserve-v2' && a.protocol !== 'kserve-generate') || seen.has(a.route)) continue;
    seen.add(a.route);
    const tensors = reader.get(a.seq).features.tensors ?? [];
    const templated = tensors.flatMap((t, i) => (t.name === '{name}' ? [i] : []));
    if (templated.length > 0) out.set(routeForTarget(a.route, map), templated);
  }
  return out;
}

/** The metadata URL of a route on the target (a path in the target goes in front, as for the requests themselves). */
function metadataUrl(target: string, modelPath: string): string {
  const u = new URL(target);
  return u.origin + pathOnTarget(u.pathname.replace(/\/$/, ''), modelPath);
}

/**
 * Asks the target for the input names of each route's model, as a real client does (`GET /v2/models/{m}[/versions/{v}]`,
 * the Open Inference Protocol's model metadata: `{inputs: [{name, datatype, shape}]}`), and maps each templated input
 * to the name at its position.
 * @returns the names by route (as sent) and input position, and the routes whose metadata gave none (a line each).
 */
export async function tensorNamesFromTarget(target: string, routes: ReadonlyMap<string, number[]>, headers: Record<string, string> = {}): Promise<{ names: Record<string, Record<number, string>>; missing: string[] }> {
  const names: Record<string, Record<number, string>> = {};
  const missing: string[] = [];
  for (const [route, positions] of routes) {
    const m = OIP_ROUTE.exec(route);
    if (!m) {
      missing.push(`${route}: not a route with model metadata`);
      continue;
    }
    try {
      const res = await request(metadataUrl(target, m[1]!), { method: 'GET', headers, headersTimeout: METADATA_TIMEOUT_MS, bodyTimeout: METADATA_TIMEOUT_MS });
      const body = (await res.body.json().catch(() => null)) as { inputs?: Array<{ name?: unknown }> } | null;
      const inputs = res.statusCode === 200 && Array.isArray(body?.inputs) ? body.inputs : null;
      const got: Record<number, string> = {};
      for (const i of positions) if (typeof inputs?.[i]?.name === 'string') got[i] = inputs[i]!.name as string;
      if (Object.keys(got).length === positions.length) names[route] = got;
      else missing.push(`${route}: the target's metadata (${m[1]}) ${inputs ? 'lists fewer inputs' : `answered ${res.statusCode}`}`);
    } catch (err) {
      missing.push(`${route}: the target's metadata could not be read (${(err as { code?: string }).code ?? (err as Error).message})`);
    }
  }
  return { names, missing };
}
