/**
 * 32-bit hashing of byte ranges (FNV-1a, finalised with murmur3's fmix32) for deterministic,
 * content-addressed decisions such as train/test splits: identical rows always land on the same side.
 */
export function hashBytes(buf: Uint8Array, start: number, end: number, seed: number): number {
  let h = (0x811c9dc5 ^ Math.imul(seed | 0, 0x9e3779b1)) >>> 0;
  for (let i = start; i < end; i++) {
    h ^= buf[i];
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Re-mix a 32-bit hash with a salt, giving an independent-looking second draw. */
export function rehash(h: number, salt: number): number {
  return fmix32((h ^ Math.imul(salt | 0, 0x27d4eb2f)) >>> 0);
}

/** Map a 32-bit hash to [0, 1). */
export function unitInterval(h: number): number {
  return (h >>> 0) / 4294967296;
}
