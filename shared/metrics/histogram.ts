// Latency histograms for hot paths: fixed arrays of counts, filled by a short loop, read at scrape
// time. prom-client's Histogram hashes its label object on every observe(); a memory hit is served
// in tens of microseconds, so the owner keeps these plain numbers instead (like the request
// counters) and the registry reads them when scraped.

/**
 * Upper bounds in seconds, from a memory hit (~0.1 ms) to a slow origin (10 s): roughly 1-2.5-5
 * per decade, the usual shape for histogram_quantile() over CDN latencies.
 */
export const LATENCY_BUCKETS_S: readonly number[] = Object.freeze([
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
])

/** One histogram's state for the exposition: cumulative counts per upper bound, then +Inf. */
export interface HistogramSnapshot {
  /** [upper bound, observations ≤ bound], ascending; the last bound is +Inf and counts all. */
  readonly buckets: readonly (readonly [number, number])[]
  readonly sum: number
  readonly count: number
}

/**
 * A Prometheus histogram without labels. observe() allocates nothing: it walks the bounds (16 by
 * default) and bumps one slot. Owned by one event loop (no locking).
 */
export class Histogram {
  readonly #bounds: Float64Array
  /** Per bucket, not cumulative; the last slot is +Inf. */
  readonly #counts: Float64Array
  #sum = 0
  #count = 0

  constructor(bounds: readonly number[] = LATENCY_BUCKETS_S) {
    if (!Array.isArray(bounds) || bounds.length === 0)
      throw new TypeError('Histogram: bounds must be a non-empty array')
    for (let i = 0; i < bounds.length; i++) {
      const b: unknown = bounds[i]
      if (typeof b !== 'number' || !Number.isFinite(b) || (i > 0 && b <= bounds[i - 1]!))
        throw new TypeError(`Histogram: bounds[${i}] must be a finite number above bounds[${i - 1}]`)
    }
    this.#bounds = Float64Array.from(bounds)
    this.#counts = new Float64Array(bounds.length + 1)
  }

  /** Counts `value` in the first bucket whose bound is ≥ it (Prometheus `le`). */
  observe(value: number): void {
    const bounds = this.#bounds
    const n = bounds.length
    let i = 0
    while (i < n && value > bounds[i]!) i++
    this.#counts[i]!++
    this.#sum += value
    this.#count++
  }

  get count(): number {
    return this.#count
  }

  snapshot(): HistogramSnapshot {
    const buckets: [number, number][] = []
    let cumulative = 0
    for (let i = 0; i < this.#counts.length; i++) {
      cumulative += this.#counts[i]!
      buckets.push([i < this.#bounds.length ? this.#bounds[i]! : Infinity, cumulative])
    }
    return { buckets, sum: this.#sum, count: this.#count }
  }
}

/**
 * Histograms by the value of one label (a cache outcome, an upstream), created on first use. The
 * last value observed is remembered, so a run of requests with one value (a run of hits) skips
 * the Map lookup.
 */
export class HistogramsBy {
  readonly #label: string
  readonly #bounds: readonly number[]
  readonly #byValue = new Map<string, Histogram>()
  #lastValue: string | null = null
  #last: Histogram | null = null

  constructor(label: string, bounds: readonly number[] = LATENCY_BUCKETS_S) {
    if (typeof label !== 'string' || !/^[a-zA-Z_]\w*$/.test(label))
      throw new TypeError('HistogramsBy: label must be a Prometheus label name')
    this.#label = label
    this.#bounds = bounds
  }

  observe(labelValue: string, value: number): void {
    if (labelValue !== this.#lastValue || this.#last === null) {
      this.#last = this.for(labelValue)
      this.#lastValue = labelValue
    }
    this.#last.observe(value)
  }

  /** The histogram of one label value, created on first use: an owner may keep it to skip lookups. */
  for(labelValue: string): Histogram {
    let h = this.#byValue.get(labelValue)
    if (h === undefined) {
      h = new Histogram(this.#bounds)
      this.#byValue.set(labelValue, h)
    }
    return h
  }

  *samples(): Iterable<readonly [Record<string, string>, Histogram]> {
    for (const [value, h] of this.#byValue) yield [{ [this.#label]: value }, h]
  }
}
