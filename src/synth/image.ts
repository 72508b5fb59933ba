import { encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import type { Rng } from '../rng.ts';

/** What is kept of an image: its format and pixel dimensions (read with `image-size`), never its pixels. */
export interface ImageInfo {
  /** `png`, `jpg`, `gif`, `webp`, … as `image-size` names it. */
  format: string;
  width: number;
  height: number;
  /** Encoded size in bytes. */
  bytes: number;
}

const MAX_PIXELS = 40_000_000;

/**
 * Seeded noise image of the recorded dimensions: PNG for `png`, JPEG for `jpg`/`jpeg` (quality 85), PNG for every
 * other format (the dimensions are what drive a vision model's preprocessing). Noise compresses poorly, so sizes are
 * close to a real photo's upper bound.
 * @returns the encoded bytes and the MIME type used.
 */
export function synthesizeImage(info: ImageInfo, rng: Rng): { bytes: Buffer; mime: string } {
  const width = Math.max(1, Math.min(info.width, 16384));
  const height = Math.max(1, Math.min(info.height, Math.floor(MAX_PIXELS / width)));
  if (info.format === 'jpg' || info.format === 'jpeg') {
    const data = Buffer.alloc(width * height * 4);
    for (let i = 0; i < data.length; i++) data[i] = (i & 3) === 3 ? 255 : rng.int(256);
    return { bytes: Buffer.from(jpeg.encode({ width, height, data }, 85).data), mime: 'image/jpeg' };
  }
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
  return { bytes: Buffer.from(encodePng({ width, height, data, channels: 3 })), mime: 'image/png' };
}
