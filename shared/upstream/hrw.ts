// Rendezvous (highest-random-weight) hashing: each (upstream, key) pair gets a score and a key
// goes to the highest-scoring healthy upstream. Removing an upstream moves only the keys it won;
// no ring, no virtual nodes. Score = fmix32(FNV-1a-32(url + '\n' + key)): FNV-1a is a few integer
// ops per byte; the MurmurHash3 finaliser gives it the avalanche that HRW needs (raw FNV-1a
// scores for one key across upstreams are correlated and skew the distribution).

const FNV_OFFSET = 0x811c9dc5
const FNV_PRIME = 0x01000193

/** FNV-1a state after `text`; pass it back in as `seed` to hash a longer string in pieces. */
export function fnv1a32(text: string, seed = FNV_OFFSET): number {
  let h = seed
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, FNV_PRIME)
  }
  return h >>> 0
}

export function fmix32(value: number): number {
  let h = value
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** Seed for one upstream: the FNV state after its URL and a separator. */
export function hrwSeed(url: string): number {
  return fnv1a32(`${url}\n`)
}

export function hrwScore(seed: number, key: string): number {
  return fmix32(fnv1a32(key, seed))
}
