import { KEY_TOKEN } from '../../anonymize/keys.ts';
import type { RequestShape } from '../../types.ts';
import { MAX_JSON_VALUES, MAX_NAME_CHARS, MAX_NUMBER_TEXT_CHARS, MAX_SKELETON_DEPTH, MAX_SKELETON_NODES, MAX_STRING_CHARS } from './caps.ts';
import { FIELD_VALUE, checkInt, checkList, checkString, fail, isMap, optString, shortPath, show } from './problems.ts';

/**
 * A skeleton compiled for checking records against it: its `s` and `u` nodes in the depth-first order in which
 * synthesis takes their `sizes` entries (a uniform array's element shape once: every element reuses its sizes), and for
 * each scope (the body, or the element of a uniform array) how many values and bytes it makes once, so a record's
 * totals take one pass over its `sizes`.
 */
export interface SkeletonPlan {
  /** `sizes` entries the skeleton takes. */
  readonly slots: number;
  /** Per slot: 0 a string, 1 a uniform array without an element shape, 2 a uniform array with one. */
  readonly kind: Uint8Array;
  /** Per slot: the scope its node is in (0: the body). */
  readonly scope: Uint32Array;
  /** Per slot of kind 2: the scope its elements make. */
  readonly opens: Uint32Array;
  /** Per scope: nodes in it (values made once per repetition), static bytes, `p` nodes. */
  readonly scopeNodes: Float64Array;
  readonly scopeBytes: Float64Array;
  readonly scopeParams: Float64Array;
  readonly nodes: number;
}

/** A shape that passed its checks, with its skeleton's plan (null without a skeleton). */
export interface CheckedShape {
  readonly shape: RequestShape;
  readonly plan: SkeletonPlan | null;
}

export const BODY_KINDS: ReadonlySet<string> = new Set(['none', 'json', 'unparseable', 'binary']);

/** Checks a decoded shape blob: its kind, content type and skeleton (node kinds known, depth and size within the caps). */
export function checkShape(v: unknown): CheckedShape {
  if (!isMap(v)) fail(`the shape is ${show(v)}, not a map`);
  const kind = v.kind;
  if (typeof kind !== 'string' || !BODY_KINDS.has(kind)) fail(`the shape's kind ${show(kind)} is not one of none, json, unparseable, binary`);
  if (v.layout !== undefined && v.layout !== null && v.layout !== 'kserve-binary') fail(`the shape's layout ${show(v.layout)} is not kserve-binary`);
  const contentType = optString(v.contentType, "the shape's contentType", MAX_NAME_CHARS);
  if (contentType !== null && !FIELD_VALUE.test(contentType)) fail(`the shape's contentType ${show(contentType)} is not a valid header value`);
  const skeleton = v.skeleton ?? null;
  if (kind === 'json' && skeleton === null) fail('the shape is JSON but has no skeleton');
  const plan = skeleton === null ? null : compileSkeleton(skeleton);
  // The stored value itself, as it was checked (fields this version does not know stay as they are).
  return { shape: v as unknown as RequestShape, plan };
}

/** Compiles and checks a skeleton (see {@link SkeletonPlan}). Recursion is bounded by {@link MAX_SKELETON_DEPTH}. */
export function compileSkeleton(root: unknown): SkeletonPlan {
  const kind: number[] = [];
  const scope: number[] = [];
  const opens: number[] = [];
  const scopeNodes: number[] = [0];
  const scopeBytes: number[] = [0];
  const scopeParams: number[] = [0];
  let nodes = 0;
  const name = (v: unknown, what: string) => checkString(v, what, MAX_NAME_CHARS);
  const visit = (n: unknown, path: string, depth: number, sc: number): void => {
    if (depth > MAX_SKELETON_DEPTH) fail(`the skeleton is nested deeper than the cap of ${MAX_SKELETON_DEPTH} levels (at ${shortPath(path)})`);
    if (++nodes > MAX_SKELETON_NODES) fail(`the skeleton has more than the cap of ${MAX_SKELETON_NODES} nodes`);
    if (!isMap(n)) fail(`skeleton node at ${shortPath(path)} is ${show(n)}, not a node`);
    scopeNodes[sc]!++;
    switch (n.t) {
      case 'o': {
        const k = n.k;
        if (!Array.isArray(k)) fail(`skeleton object at ${shortPath(path)} has keys ${show(k)}, not a list`);
        scopeBytes[sc]! += 2 + k.length;
        for (let i = 0; i < k.length; i++) {
          const e = k[i];
          if (!Array.isArray(e) || e.length !== 2) fail(`skeleton object at ${shortPath(path)}: member ${i} is ${show(e)}, not a [key, node] pair`);
          const key = name(e[0], `skeleton key ${i} at ${shortPath(path)}`);
          // A key token is replayed as a key of its recorded length.
          const token = KEY_TOKEN.exec(key);
          scopeBytes[sc]! += (token ? Number(token[2]) + 2 : JSON.stringify(key).length) + 1;
          visit(e[1], path ? `${path}.${key}` : key, depth + 1, sc);
        }
        return;
      }
      case 'a': {
        const e = n.e;
        if (!Array.isArray(e)) fail(`skeleton array at ${shortPath(path)} has elements ${show(e)}, not a list`);
        scopeBytes[sc]! += 2 + e.length;
        for (let i = 0; i < e.length; i++) visit(e[i], `${path}[${i}]`, depth + 1, sc);
        return;
      }
      case 'u': {
        scope.push(sc);
        scopeBytes[sc]! += 2;
        if (n.of === null || n.of === undefined) {
          kind.push(1);
          opens.push(0);
          return;
        }
        const inner = scopeNodes.length;
        scopeNodes.push(0);
        scopeBytes.push(1); // the comma after each element
        scopeParams.push(0);
        kind.push(2);
        opens.push(inner);
        visit(n.of, `${path}[]`, depth + 1, inner);
        return;
      }
      case 's':
        kind.push(0);
        scope.push(sc);
        opens.push(0);
        scopeBytes[sc]! += 2;
        return;
      case 'i':
      case 'f': {
        if (n.c === undefined || n.c === null) {
          scopeBytes[sc]! += n.t === 'i' ? 3 : 8;
          return;
        }
        if (typeof n.c !== 'number' || !Number.isFinite(n.c) || n.c < 0 || n.c > MAX_NUMBER_TEXT_CHARS) fail(`skeleton number at ${shortPath(path)} has a text length of ${show(n.c)}, not 0..${MAX_NUMBER_TEXT_CHARS} characters`);
        scopeBytes[sc]! += Math.ceil(n.c) + 1;
        return;
      }
      case 'z': scopeBytes[sc]! += 4; return;
      case 'b':
        if (n.v !== undefined && typeof n.v !== 'boolean') fail(`skeleton boolean at ${shortPath(path)} has value ${show(n.v)}`);
        scopeBytes[sc]! += 5;
        return;
      case 'p':
        name(n.name, `skeleton parameter name at ${shortPath(path)}`);
        scopeParams[sc]!++;
        return;
      case 'l':
        scopeBytes[sc]! += JSON.stringify(name(n.v, `skeleton literal at ${shortPath(path)}`)).length;
        return;
      default:
        fail(`skeleton node at ${shortPath(path)} has unknown kind ${show(n.t)}`);
    }
  };
  visit(root, '', 1, 0);
  return {
    slots: kind.length, kind: Uint8Array.from(kind), scope: Uint32Array.from(scope), opens: Uint32Array.from(opens),
    scopeNodes: Float64Array.from(scopeNodes), scopeBytes: Float64Array.from(scopeBytes), scopeParams: Float64Array.from(scopeParams), nodes,
  };
}

export const times = (m: number) => (m > 1 ? `, repeated in ${m} array elements` : '');

/**
 * Checks a record's `sizes` against its skeleton: enough entries, each an integer within its cap, and the strings and
 * values they make (with every uniform array's repetitions) within {@link MAX_STRING_CHARS} and {@link MAX_JSON_VALUES}.
 * @returns the estimated bytes of the JSON body (strings, values, and `p` nodes at `paramBytes` each).
 */
export function checkSizes(plan: SkeletonPlan, sizes: unknown, paramBytes: number): number {
  if (sizes === undefined && plan.slots === 0) return plan.scopeBytes[0]! + plan.scopeParams[0]! * paramBytes;
  if (sizes === undefined) fail(`sizes is missing: the skeleton takes ${plan.slots} entries`);
  const list = checkList(sizes, 'sizes', MAX_SKELETON_NODES, 'entries (skeleton nodes)');
  if (list.length < plan.slots) fail(`sizes has ${list.length} entries, fewer than the ${plan.slots} the skeleton takes`);
  const mult = new Float64Array(plan.scopeNodes.length);
  mult[0] = 1;
  let values = plan.scopeNodes[0]!;
  let chars = 0;
  let bytes = plan.scopeBytes[0]! + plan.scopeParams[0]! * paramBytes;
  for (let i = 0; i < plan.slots; i++) {
    const v = list[i];
    const m = mult[plan.scope[i]!]!;
    if (plan.kind[i] === 0) {
      const len = checkInt(v, `sizes[${i}]`, 0, MAX_STRING_CHARS, "characters per request (a string's length)");
      chars += len * m;
      bytes += len * m;
      if (chars > MAX_STRING_CHARS) fail(`sizes[${i}] = ${len} (a string's length${times(m)}) brings the request's strings to ${chars} characters, over the cap of ${MAX_STRING_CHARS} characters per request`);
      continue;
    }
    const len = checkInt(v, `sizes[${i}]`, 0, MAX_JSON_VALUES, "elements per request (a uniform array's length)");
    if (plan.kind[i] !== 2) continue;
    if (len === 0) fail(`sizes[${i}] = 0 is the length of a uniform array whose elements have a shape: the record is damaged`);
    const s = plan.opens[i]!;
    mult[s] = m * len;
    values += plan.scopeNodes[s]! * mult[s]!;
    bytes += (plan.scopeBytes[s]! + plan.scopeParams[s]! * paramBytes) * mult[s]!;
    if (values > MAX_JSON_VALUES) fail(`sizes[${i}] = ${len} (a uniform array's length${times(m)}) brings the request to ${values} JSON values, over the cap of ${MAX_JSON_VALUES} values per request`);
  }
  for (let i = plan.slots; i < list.length; i++) checkInt(list[i], `sizes[${i}]`, 0, Math.max(MAX_STRING_CHARS, MAX_JSON_VALUES), 'per entry');
  return bytes;
}
