// What a cache tier counts (docs/architecture.md §5.9, §10.3): requests by status, status class
// and cache outcome, bytes sent by cache outcome, request and upstream latency histograms,
// upstream health, front-door refusals, and the engine's counters, as Prometheus metrics.
import type { CacheCounters } from '../cache/index.js'
import { HistogramsBy, type Histogram, type MetricSpec } from '../metrics/index.js'
import type { UpstreamStats } from '../upstream/index.js'

interface Cell {
  n: number
  bytes: number
  /** The request time histogram of this cell's cache outcome (shared by every status). */
  readonly time: Histogram
}

/**
 * Per-request counters as plain numbers (owned by one tier's request handler, read at scrape time):
 * requests and body bytes sent by status and cache outcome, and the time each request took.
 */
export class RequestCounts {
  readonly #byStatus = new Map<number, Map<string, Cell>>()
  /** Seconds from the request's arrival to its last byte handed to the socket, by cache outcome. */
  readonly time = new HistogramsBy('cache')
  // The cell of the last (status, cache) pair counted: consecutive requests (a run of hits) bump
  // it without a Map lookup; any other pair costs two lookups, the histogram none (the cell has it).
  #lastStatus = -1
  #lastCache = ''
  #lastCell: Cell | null = null
  sentBytes = 0

  /** One finished request: its status, cache outcome ('NONE' when the cache was not reached), body bytes and seconds. */
  add(status: number, cache: string, bytes: number, seconds: number): void {
    let cell = this.#lastCell
    if (cell === null || status !== this.#lastStatus || cache !== this.#lastCache) {
      cell = this.#cellOf(status, cache)
      this.#lastStatus = status
      this.#lastCache = cache
      this.#lastCell = cell
    }
    cell.n++
    cell.bytes += bytes
    cell.time.observe(seconds)
    this.sentBytes += bytes
  }

  #cellOf(status: number, cache: string): Cell {
    let byCache = this.#byStatus.get(status)
    if (byCache === undefined) {
      byCache = new Map()
      this.#byStatus.set(status, byCache)
    }
    let cell = byCache.get(cache)
    if (cell === undefined) {
      cell = { n: 0, bytes: 0, time: this.time.for(cache) }
      byCache.set(cache, cell)
    }
    return cell
  }

  *samples(): Iterable<readonly [Record<string, string | number>, number]> {
    for (const [status, byCache] of this.#byStatus)
      for (const [cache, cell] of byCache) yield [{ status, class: statusClass(status), cache }, cell.n]
  }

  /** Body bytes by cache outcome, whatever the status. */
  bytesByCache(): Iterable<readonly [Record<string, string>, number]> {
    const sums = new Map<string, number>()
    for (const byCache of this.#byStatus.values())
      for (const [cache, cell] of byCache) sums.set(cache, (sums.get(cache) ?? 0) + cell.bytes)
    return [...sums].map(([cache, bytes]) => [{ cache }, bytes] as const)
  }
}

/** '2xx' … '5xx'; 'none' for a request answered with no status (the client left first). */
function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'none'
}

/** What the worker pool reports (worker-pool.ts); a process without workers reports 1 live, no others. */
export interface WorkerStats {
  readonly live: number
  readonly replaced: number
  readonly roundTrips: number
  localHits(): readonly (readonly [number, number])[]
}

/** The worker metrics of a process whose main thread serves (`workers: 1`). */
export const MAIN_THREAD_ONLY: WorkerStats = Object.freeze({
  live: 1,
  replaced: 0,
  roundTrips: 0,
  localHits: () => [],
})

export function tierMetrics(
  counters: () => Readonly<CacheCounters>,
  requests: RequestCounts,
  upstreams: () => Iterable<UpstreamStats>,
  workers: () => WorkerStats = () => MAIN_THREAD_ONLY,
) {
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
      help: 'requests by status, status class and cache outcome (NONE: answered before the cache)',
      labels: ['status', 'class', 'cache'],
      collect: () => requests.samples(),
    },
    sent_bytes_total: { type: 'counter', help: 'body bytes sent to clients', collect: () => requests.sentBytes },
    sent_bytes_by_cache_total: {
      type: 'counter',
      help: 'body bytes sent to clients by cache outcome (they add up to sent_bytes_total)',
      labels: ['cache'],
      collect: () => requests.bytesByCache(),
    },
    request_duration_seconds: {
      type: 'histogram',
      help: 'time from a request to its last byte handed to the socket, by cache outcome',
      labels: ['cache'],
      collect: () => requests.time.samples(),
    },
    upstream_up: {
      type: 'gauge',
      help: 'whether an upstream is in service (1) or marked down by failures or probes (0)',
      labels: ['upstream', 'role'],
      collect: () => [...upstreams()].map((u) => [{ upstream: u.url, role: u.role }, u.isUp ? 1 : 0] as const),
    },
    upstream_attempts_total: {
      type: 'counter',
      help: 'requests sent to an upstream (probes not included)',
      labels: ['upstream', 'role'],
      collect: () => [...upstreams()].map((u) => [{ upstream: u.url, role: u.role }, u.requests] as const),
    },
    upstream_failures_total: {
      type: 'counter',
      help: 'requests to an upstream that could not connect or timed out before headers',
      labels: ['upstream', 'role'],
      collect: () => [...upstreams()].map((u) => [{ upstream: u.url, role: u.role }, u.failures] as const),
    },
    upstream_duration_seconds: {
      type: 'histogram',
      help: 'time from sending a request upstream to its response headers',
      labels: ['upstream', 'role'],
      collect: () => [...upstreams()].map((u) => [{ upstream: u.url, role: u.role }, u.headersTime] as const),
    },
    workers: {
      type: 'gauge',
      help: 'request-serving threads of this process (the `workers` key; fewer while one is being replaced)',
      collect: () => workers().live,
    },
    workers_replaced_total: {
      type: 'counter',
      help: 'worker threads started in place of one that exited (a crash, or POST /workers/restart)',
      collect: () => workers().replaced,
    },
    worker_round_trips_total: {
      type: 'counter',
      help: 'requests worker threads sent to the coordinator’s engine (a hit answered in the worker sends none)',
      collect: () => workers().roundTrips,
    },
    worker_local_hits_total: {
      type: 'counter',
      help: 'fresh memory hits a worker thread answered itself, without a round trip, by worker slot',
      labels: ['worker'],
      collect: () =>
        workers()
          .localHits()
          .map(([index, hits]) => [{ worker: String(index) }, hits] as const),
    },
    refused_total: { type: 'counter', help: 'requests refused by the front door, by code', labels: ['code'] },
    control_events_total: {
      type: 'counter',
      help: 'control events read from Kafka, by type and result (applied, skipped, malformed, failed)',
      labels: ['type', 'result'],
    },
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
    prefetch_wasted_total: counter(
      'prefetched objects evicted or purged before any client hit them',
      (c) => c.prefetchWasted,
    ),
    cache_index_rebuilds_total: counter('damaged disk indexes moved aside at start', (c) => c.indexRebuilds),
    cache_index_errors_total: counter('index operations that found damage at run time', (c) => c.indexErrors),
  } satisfies Record<string, MetricSpec>
}
