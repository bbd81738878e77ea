// Playlist-aware and CMCD-guided prefetch at the edge (docs/architecture.md §6). The edge remembers
// the HLS media playlists and DASH MPDs (SegmentTemplate `$Number$`) it served; when it serves a
// media segment of a rendition it knows, it fills the next `segments` segments of that rendition through the cache engine, so the player's
// next requests are hits. A CMCD `nor` (CTA-5004 next object request) is prefetched first.
//
// The rules: a bounded number of prefetches run at once (the rest wait in a bounded queue);
// the engine deduplicates with fills in flight and skips fresh objects; never past the last
// segment the playlist lists (RFC 8216 §4.3.3.4: a live playlist's end is its last segment too);
// after a failed prefetch (the upstream refused or timed out) nothing new is issued for
// `failureBackoffMs`; and nothing runs inside the request that triggered it (served() only notes
// keys; the engine is called from a later turn of the event loop).
// A segment served before its rendition is known (the player's first segment can be served before
// its playlist's fill has committed and been read) is followed once the playlist is read.
//
// Ownership: one Prefetcher per edge, in the thread that owns the engine (with `workers`, the
// coordinator: workers send it the keys they served and the hints they were given), owns its
// playlist map, queue and counters; everything runs on that thread's event loop.
import type { PrefetchResult, ServeResult } from '../../shared/cache/index.js'
import { parseMedia } from '../../shared/hls/index.js'
import type { Logger } from '../../shared/log/index.js'
import type { MetricSpec } from '../../shared/metrics/index.js'
import { contentClassOf, isValidPath } from '../../shared/namespace/index.js'
import { dashSegmentLists } from './prefetch-dash.js'

/** What the prefetcher needs of the cache engine. */
export interface PrefetchEngine {
  prefetch(key: string): Promise<PrefetchResult>
  peekBody(key: string, maxBytes: number): Promise<Buffer | null>
}

export interface PrefetcherOptions {
  engine: PrefetchEngine
  /** Segments fetched ahead of the one served (0: no playlist prefetch, CMCD hints only). */
  segments: number
  /** Prefetches running at once, over every player of this edge. */
  concurrency: number
  /** How long nothing new is issued after a prefetch failed. */
  failureBackoffMs: number
  /** Key prefixes the edge serves (config `paths`): nothing else is prefetched. */
  paths: readonly string[]
  log: Logger
  now?: () => number
}

/** The prefetcher's own counts (the engine counts prefetchIssued, prefetchUsed and prefetchWasted). */
export interface PrefetchCounters {
  /** Media playlists read and remembered. */
  playlists: number
  /** Keys handed to the engine, by result. */
  present: number
  joined: number
  filled: number
  failed: number
  /** CMCD next-object hints accepted. */
  hints: number
  /** Keys not prefetched: the queue was full, or the upstream was failing (backoff). */
  dropped: number
}

/** What the engine answered for a key the prefetcher handed it (PrefetchResult). */
const RESULTS = ['present', 'joined', 'filled', 'failed'] as const satisfies readonly PrefetchResult[]

/**
 * The prefetcher's counts as Prometheus counters, read when /metrics is scraped (docs/architecture.md
 * §10.3); all 0 while there is no prefetcher (prefetch off). Beside the engine's
 * prefetch_issued/used/wasted_total: issued counts the fills a prefetch started, these what the
 * prefetcher read, was told and did.
 */
export function prefetchMetrics(counters: () => Readonly<PrefetchCounters> | null) {
  const count = (help: string, pick: (c: Readonly<PrefetchCounters>) => number): MetricSpec => ({
    type: 'counter',
    help,
    collect: () => {
      const c = counters()
      return c === null ? 0 : pick(c)
    },
  })
  return {
    prefetch_playlists_total: count('media playlists the prefetcher read and remembered', (c) => c.playlists),
    prefetch_hints_total: count('CMCD next-object hints accepted for prefetch', (c) => c.hints),
    prefetch_results_total: {
      type: 'counter',
      help: 'keys the prefetcher handed to the cache, by result (present: stored already, joined: a fill in flight, filled, failed)',
      labels: ['result'],
      collect: () => {
        const c = counters()
        return RESULTS.map((result) => [{ result }, c === null ? 0 : c[result]] as const)
      },
    },
    prefetch_dropped_total: count(
      'keys not prefetched: the queue was full, or the upstream was failing (backoff)',
      (c) => c.dropped,
    ),
  } satisfies Record<string, MetricSpec>
}

/** One media playlist's segments as cache keys, in order. */
interface Rendition {
  readonly playlistKey: string
  readonly segments: readonly string[]
  readonly indexOf: ReadonlyMap<string, number>
}

/** Playlists larger than this are not read (a VOD playlist of a few hours is ~200 KiB). */
const PLAYLIST_MAX_BYTES = 2 * 1024 * 1024
/** Renditions remembered; the oldest is forgotten first. */
const RENDITIONS_MAX = 1024
/** Keys waiting for a free slot. */
const QUEUE_MAX = 256
/** A playlist served again within this time is not read again (a live playlist is re-read). */
const RELEARN_MS = 1000
/**
 * How long a segment served before its rendition was known still counts as the player's position
 * once the playlist is read: a player's first segment can be served before its playlist's fill has
 * committed (the client has the last byte first), and so before the playlist is read.
 */
const EARLY_SEGMENT_MS = 10_000
/** The base the relative URIs of a playlist resolve against (only its path is used). */
const BASE = 'http://edge.invalid'

/** The directory of a key path, trailing slash included. */
const dirOf = (path: string): string => path.slice(0, path.lastIndexOf('/') + 1)

/**
 * The key path a playlist URI names (RFC 8216 §4.1: relative to the playlist's URI, RFC 3986
 * §5.2), or null for one the edge does not prefetch: another host, a query, an invalid path.
 */
export function resolveKeyPath(uri: string, basePath: string): string | null {
  if (uri.includes('?') || uri.includes('#')) return null
  let url: URL
  try {
    url = new URL(uri, BASE + basePath)
  } catch {
    return null
  }
  if (url.origin !== BASE || !isValidPath(url.pathname)) return null
  return url.pathname
}

export class Prefetcher {
  readonly #o: Required<PrefetcherOptions>
  /** Renditions by the directory of their segments. */
  readonly #renditions = new Map<string, Rendition>()
  /** By directory: the last segment served there while no rendition was known for it, and when. */
  readonly #early = new Map<string, { path: string; atMs: number }>()
  /** Playlist key → when it was last read (or is being read: the entry is set before). */
  readonly #readAt = new Map<string, number>()
  readonly #queue: string[] = []
  /** Keys queued or running: a key is prefetched once at a time. */
  readonly #pending = new Set<string>()
  #running = 0
  #pausedUntilMs = 0
  #isPumpScheduled = false
  #isClosed = false
  readonly counters: PrefetchCounters = {
    playlists: 0,
    present: 0,
    joined: 0,
    filled: 0,
    failed: 0,
    hints: 0,
    dropped: 0,
  }

  constructor(o: PrefetcherOptions) {
    if (!Number.isInteger(o.segments) || o.segments < 0) throw new TypeError('prefetch.segments: a whole number >= 0')
    if (!Number.isInteger(o.concurrency) || o.concurrency < 1) {
      throw new TypeError('prefetch.concurrency: a whole number >= 1')
    }
    if (!(o.failureBackoffMs >= 0)) throw new TypeError('prefetch.failureBackoffMs: a number >= 0')
    this.#o = { ...o, now: o.now ?? Date.now }
  }

  /** Running and queued prefetches (for tests and shutdown). */
  get pending(): number {
    return this.#pending.size
  }

  /**
   * The tier served `key` (its cache key) to a client. Synchronous and cheap: a media playlist is
   * read later; a segment of a known rendition queues its successors.
   */
  served(key: string, result: Pick<ServeResult, 'status'>): void {
    if (this.#isClosed || result.status >= 400) return
    const q = key.indexOf('?')
    const path = q < 0 ? key : key.slice(0, q)
    if (path.endsWith('.m3u8') || path.endsWith('.mpd')) {
      this.#noteMediaPlaylist(key)
      return
    }
    if (this.#o.segments === 0 || contentClassOf(path) !== 'segment') return
    const dir = dirOf(path)
    const rendition = this.#renditions.get(dir)
    if (rendition !== undefined) {
      this.#queueAfter(rendition, path)
      return
    }
    // Its playlist may still be on its way to being read: #remember picks this up.
    if (this.#early.size >= RENDITIONS_MAX) this.#early.clear()
    this.#early.set(dir, { path, atMs: this.#o.now() })
  }

  /** Queues the successors of a served segment: never past the playlist's end, at most `segments` ahead. */
  #queueAfter(rendition: Rendition, path: string): void {
    const i = rendition.indexOf.get(path)
    if (i === undefined) return
    const end = Math.min(rendition.segments.length, i + 1 + this.#o.segments)
    for (let j = i + 1; j < end; j++) this.#enqueue(rendition.segments[j] as string, false)
  }

  /** A CMCD next-object request (already resolved and checked against the client's token). */
  hint(keyPath: string): void {
    if (this.#isClosed || !this.#isServed(keyPath)) return
    this.counters.hints++
    this.#enqueue(keyPath, true)
  }

  /** Stop issuing; running prefetches finish in the engine (which closes after). */
  close(): void {
    this.#isClosed = true
    for (const key of this.#queue) this.#pending.delete(key)
    this.#queue.length = 0
  }

  #isServed(path: string): boolean {
    for (const prefix of this.#o.paths) if (path.startsWith(prefix)) return true
    return false
  }

  #noteMediaPlaylist(key: string): void {
    const now = this.#o.now()
    const last = this.#readAt.get(key)
    if (last !== undefined && now - last < RELEARN_MS) return
    if (this.#readAt.size >= RENDITIONS_MAX) this.#readAt.clear()
    this.#readAt.set(key, now)
    // After this turn: the request that served the playlist is finished first.
    setImmediate(() => {
      this.#readPlaylist(key).catch((err: unknown) => this.#o.log.warn({ err, key }, 'prefetch playlist read failed'))
    })
  }

  async #readPlaylist(key: string): Promise<void> {
    if (this.#isClosed) return
    const body = await this.#o.engine.peekBody(key, PLAYLIST_MAX_BYTES)
    if (body === null) return
    const text = body.toString('utf8')
    const q = key.indexOf('?')
    const base = q < 0 ? key : key.slice(0, q)
    if (base.endsWith('.mpd')) {
      for (const uris of dashSegmentLists(text)) this.#remember(key, base, uris)
      return
    }
    // A multivariant playlist lists no media segments (RFC 8216 §4.3.4): nothing to learn.
    if (!text.includes('#EXTINF')) return
    let segments: readonly { uri: string }[]
    try {
      segments = parseMedia(text).segments
    } catch (err) {
      this.#o.log.debug({ err, key }, 'prefetch: playlist not parsed')
      return
    }
    this.#remember(
      key,
      base,
      segments.map((s) => s.uri),
    )
  }

  /** One rendition's segment URIs, in order, resolved against its playlist's path `base`. */
  #remember(key: string, base: string, uris: readonly string[]): void {
    const keys: string[] = []
    const indexOf = new Map<string, number>()
    for (const uri of uris) {
      const path = resolveKeyPath(uri, base)
      // A URI the edge cannot prefetch (or not a media segment) ends the run: what follows is not
      // "next" for a player here.
      if (path === null || !this.#isServed(path) || contentClassOf(path) !== 'segment') break
      indexOf.set(path, keys.length)
      keys.push(path)
    }
    if (keys.length === 0) return
    const rendition: Rendition = { playlistKey: key, segments: keys, indexOf }
    const dirs = new Set(keys.map(dirOf))
    for (const dir of dirs) {
      this.#renditions.delete(dir)
      if (this.#renditions.size >= RENDITIONS_MAX) {
        const oldest = this.#renditions.keys().next().value
        if (oldest !== undefined) this.#renditions.delete(oldest)
      }
      this.#renditions.set(dir, rendition)
    }
    this.counters.playlists++
    const now = this.#o.now()
    for (const dir of dirs) {
      const early = this.#early.get(dir)
      if (early === undefined) continue
      this.#early.delete(dir)
      if (now - early.atMs < EARLY_SEGMENT_MS) this.#queueAfter(rendition, early.path)
    }
  }

  #enqueue(key: string, isFirst: boolean): void {
    if (this.#pending.has(key)) return
    if (this.#o.now() < this.#pausedUntilMs || this.#queue.length >= QUEUE_MAX) {
      this.counters.dropped++
      return
    }
    this.#pending.add(key)
    if (isFirst) this.#queue.unshift(key)
    else this.#queue.push(key)
    if (!this.#isPumpScheduled) {
      this.#isPumpScheduled = true
      setImmediate(() => {
        this.#isPumpScheduled = false
        this.#pump()
      })
    }
  }

  #pump(): void {
    while (!this.#isClosed && this.#running < this.#o.concurrency && this.#queue.length > 0) {
      const key = this.#queue.shift() as string
      this.#running++
      this.#o.engine
        .prefetch(key)
        .catch((): PrefetchResult => 'failed')
        .then((result) => this.#settled(key, result))
        .catch((err: unknown) => this.#o.log.error({ err, key }, 'prefetch bookkeeping failed'))
    }
  }

  #settled(key: string, result: PrefetchResult): void {
    this.#running--
    this.#pending.delete(key)
    this.counters[result]++
    if (result === 'failed') {
      // The upstream is failing: issue nothing new for a while and forget what waits, so a
      // struggling shield or origin is not asked for more than the players themselves ask.
      const now = this.#o.now()
      if (now >= this.#pausedUntilMs) {
        this.#o.log.warn({ key, backoffMs: this.#o.failureBackoffMs }, 'prefetch paused: the upstream failed')
      }
      this.#pausedUntilMs = now + this.#o.failureBackoffMs
      this.counters.dropped += this.#queue.length
      for (const k of this.#queue) this.#pending.delete(k)
      this.#queue.length = 0
      return
    }
    this.#pump()
  }
}
