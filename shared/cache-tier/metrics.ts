// What a cache tier counts (docs/architecture.md §5.9, §10.3): requests by status and cache
// outcome, bytes sent, front-door refusals, and the engine's counters, as Prometheus metrics.
import type { CacheCounters } from '../cache/index.js'
import type { MetricSpec } from '../metrics/index.js'

/**
 * Per-request counters as plain numbers (owned by one tier's request handler, read at scrape time):
 * requests by status and cache outcome, and body bytes sent.
 */
export class RequestCounts {
  readonly #byStatus = new Map<number, Map<string, { n: number }>>()
  // The cell of the last (status, cache) pair counted: consecutive requests (a run of hits) bump
  // it without a Map lookup.
  #lastStatus = -1
  #lastCache = ''
  #lastCell: { n: number } = { n: 0 }
  sentBytes = 0

  add(status: number, cache: string): void {
    if (status === this.#lastStatus && cache === this.#lastCache) {
      this.#lastCell.n++
      return
    }
    let byCache = this.#byStatus.get(status)
    if (byCache === undefined) {
      byCache = new Map()
      this.#byStatus.set(status, byCache)
    }
    let cell = byCache.get(cache)
    if (cell === undefined) {
      cell = { n: 0 }
      byCache.set(cache, cell)
    }
    cell.n++
    this.#lastStatus = status
    this.#lastCache = cache
    this.#lastCell = cell
  }

  *samples(): Iterable<readonly [Record<string, string | number>, number]> {
    for (const [status, byCache] of this.#byStatus)
      for (const [cache, cell] of byCache) yield [{ status, cache }, cell.n]
  }
}

export function tierMetrics(counters: () => Readonly<CacheCounters>, requests: RequestCounts) {
  const gauge = (help: string, pick: (c: Readonly<CacheCounters>) => number): MetricSpec => ({
    type: 'gauge',
    help,
    collect: () => pick(counters()),
  })
  // The engine's totals only grow (a restart starts them again at 0), so they are Prometheus
  // counters named *_total (rate() and increase() apply); sizes are gauges.
  const counter = (help: string, pick: (c: Readonly<CacheCounters>) => number): MetricSpec => ({
    type: 'counter',
    help,
    collect: () => pick(counters()),
  })
  return {
    requests_total: {
      type: 'counter',
      help: 'requests by status and cache outcome',
      labels: ['status', 'cache'],
      collect: () => requests.samples(),
    },
    sent_bytes_total: { type: 'counter', help: 'body bytes sent to clients', collect: () => requests.sentBytes },
    refused_total: { type: 'counter', help: 'requests refused by the front door, by code', labels: ['code'] },
    cache_hits_total: counter('cache hits (engine counter)', (c) => c.hits),
    cache_misses_total: counter('cache misses (engine counter)', (c) => c.misses),
    cache_stale_total: counter('stale objects served', (c) => c.stale),
    cache_revalidated_total: counter('objects revalidated with 304', (c) => c.revalidated),
    cache_fills_total: counter('upstream fills completed', (c) => c.fills),
    cache_fill_errors_total: counter('fills that failed', (c) => c.fillErrors),
    cache_store_errors_total: counter('fills served but not stored: the disk refused them', (c) => c.storeErrors),
    cache_coalesced_total: counter('requests that joined a fill in flight', (c) => c.coalesced),
    upstream_requests_total: counter('requests sent upstream', (c) => c.upstreamRequests),
    cache_evictions_total: counter('objects evicted', (c) => c.evictions),
    cache_evicted_bytes_total: counter('bytes evicted', (c) => c.evictedBytes),
    cache_purged_total: counter('objects purged', (c) => c.purged),
    cache_memory_bytes: gauge('bytes in the memory tier', (c) => c.memoryBytes),
    cache_disk_bytes: gauge('bytes in the disk tier', (c) => c.diskBytes),
    cache_objects: gauge('objects in the disk index', (c) => c.objects),
    prefetch_issued_total: counter('prefetches issued', (c) => c.prefetchIssued),
    prefetch_used_total: counter('prefetched objects later hit', (c) => c.prefetchUsed),
    cache_index_rebuilds_total: counter('damaged disk indexes moved aside at start', (c) => c.indexRebuilds),
    cache_index_errors_total: counter('index operations that found damage at run time', (c) => c.indexErrors),
  } satisfies Record<string, MetricSpec>
}
