import seedrandom from 'seedrandom';

/**
 * A seeded random stream. Every random choice in tracewarp goes through one of these so that the same seed gives
 * the same schedule and bodies byte for byte (DESIGN decision 6). Children are independent named streams derived
 * from the parent's seed, so adding a draw in one place never shifts the draws of another.
 */
export interface Rng {
  /** The seed string this stream was made from. */
  readonly seed: string;
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** A new independent stream named `name` under this one (same parent seed + name → same stream). */
  child(name: string): Rng;
}

/** Creates the root stream for a seed (a number or string). The default seed is 1. */
export function createRng(seed: number | string = 1): Rng {
  const s = String(seed);
  const prng = seedrandom(s);
  return {
    seed: s,
    next: () => prng.quick(),
    int: (n: number) => Math.floor(prng.quick() * n),
    child: (name: string) => createRng(`${s}/${name}`),
  };
}
