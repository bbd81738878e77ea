// Time-to-first-byte percentiles over any number of samples in constant memory: log-spaced
// buckets 1 % wide from 1 µs to ~100 s (about 1 900 counters), the idea of HdrHistogram without
// its dependency. A percentile is reported as the upper edge of its bucket, so it is at most 1 %
// high.

const GROWTH = 1.01
const LOG_GROWTH = Math.log(GROWTH)
const MIN_US = 1
const BUCKETS = Math.ceil(Math.log(100_000_000 / MIN_US) / LOG_GROWTH) + 1

export class Histogram {
  readonly #counts = new Uint32Array(BUCKETS)
  #total = 0
  #maxMs = 0

  record(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return
    const us = Math.max(MIN_US, ms * 1000)
    const i = Math.min(BUCKETS - 1, Math.ceil(Math.log(us / MIN_US) / LOG_GROWTH))
    this.#counts[i] = (this.#counts[i] ?? 0) + 1
    this.#total++
    if (ms > this.#maxMs) this.#maxMs = ms
  }

  get count(): number {
    return this.#total
  }

  get maxMs(): number {
    return this.#maxMs
  }

  /** The value at or below which `p` percent of the samples fall (0 with no samples). */
  percentileMs(p: number): number {
    if (this.#total === 0) return 0
    const rank = Math.max(1, Math.ceil((p / 100) * this.#total))
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i] ?? 0
      if (seen >= rank) return Math.min(this.#maxMs, (MIN_US * GROWTH ** i) / 1000)
    }
    return this.#maxMs
  }
}
