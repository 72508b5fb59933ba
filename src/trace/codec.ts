import { createHash } from 'node:crypto';
import { Packr } from 'msgpackr';

/** msgpackr codec for shape, params, features and event blobs. Plain MessagePack (no record extension), so any msgpack reader can decode. */
const packr = new Packr({ useRecords: false, moreTypes: false });

/** Encodes a value to a MessagePack blob. */
export function encodeBlob(value: unknown): Buffer {
  return packr.pack(value);
}

/** Decodes a MessagePack blob. @throws on malformed bytes. */
export function decodeBlob<T>(blob: Buffer | Uint8Array): T {
  return packr.unpack(blob) as T;
}

/** Event offsets (µs, ascending) → delta-encoded MessagePack blob: `[first, d1, d2, …]`. */
export function encodeEventOffsets(offsetsUs: number[]): Buffer {
  const deltas = offsetsUs.map((v, i) => (i === 0 ? v : v - offsetsUs[i - 1]!));
  return packr.pack(deltas);
}

/** Inverse of {@link encodeEventOffsets}. */
export function decodeEventOffsets(blob: Buffer | Uint8Array): number[] {
  const deltas = packr.unpack(blob) as number[];
  let acc = 0;
  return deltas.map((d) => (acc += d));
}

/** Stable content hash (hex SHA-256 of the blob) used to store each distinct shape once. */
export function blobHash(blob: Buffer): string {
  return createHash('sha256').update(blob).digest('hex');
}
