/**
 * Deterministic pseudo-random bytes (xorshift32): the same bytes for the same seed on every run,
 * different per seed and per byte, and incompressible enough for cache and transfer tests.
 */
export function seededBytes(n: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(n)
  let x = seed * 2654435761 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}
