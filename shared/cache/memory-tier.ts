// The memory tier (docs/architecture.md §5): an lru-cache of whole small objects, bounded by what
// an entry costs the process, not only by its body. The store (storage.ts) inserts and removes
// entries; the engine reads them on the hit path and caches each entry's rendered HIT head.

import { LRUCache } from 'lru-cache'
import type { HeaderMap, ResponseSink } from '../http/types.js'
import { planStored } from './plan.js'
import { ageSeconds, responseHeaders, type StoredObject } from './stored-object.js'
import type { CacheOutcome, ServeRequest, ServeResult } from './types.js'

export interface MemoryEntry {
  obj: StoredObject
  readonly body: Buffer
  isPrefetched: boolean
  /** Cached HIT headers for the plain hot path, rebuilt when the Age second changes. */
  hitHeaders: HeaderMap | null
  hitAgeSec: number
  /** The result of a plain GET hit of this entry, shared by every such hit (never mutated). */
  hitResult: ServeResult | null
  /**
   * This version of the entry, unique in the process: a new entry or a changed `obj` (a 304's
   * headers, a soft purge) gets a new one. Worker threads name the version they served locally
   * (docs/architecture.md §9.1).
   */
  generation: number
}

export type MemoryTier = LRUCache<string, MemoryEntry>

// What a memory entry costs beyond its body, so the memory budget bounds the process and not only
// the bodies: a flood of distinct tiny objects (404s of ~60 bytes) used to fill a 16 MiB budget with
// ~300 000 entries and ~800 MB of RSS. On Node 20 a 404 entry with nine header fields holds ~800
// bytes of live heap besides its body, but in a running edge each one costs ~3 KB of RSS: entries
// live long, among short-lived request garbage, so old-space pages stay partly used (measured as
// the RSS difference between a 1 MiB and a 16 MiB tier after 60 000 distinct 404s). The estimate
// follows the RSS: a fixed part (MemoryEntry, StoredObject and its stale policy, the LRU's slot
// and Map entry, the shared hit result, an ArrayBuffer per body) and per header field its name and
// value twice (stored and rendered head) with V8's string and property overhead. Counting too much
// only makes the tier hold fewer tiny entries; counting too little lets the process outgrow it.
const ENTRY_FIXED_BYTES = 1536
const HEADER_FIELD_BYTES = 48

/** The memory budget's measure of an entry: body + key + headers (stored and rendered) + bookkeeping. */
function memoryEntryCost(entry: MemoryEntry): number {
  let headerBytes = 0
  const headers = entry.obj.headers
  for (const name in headers) headerBytes += name.length + String(headers[name] ?? '').length + HEADER_FIELD_BYTES
  return ENTRY_FIXED_BYTES + entry.body.length + 2 * entry.obj.key.length + 2 * headerBytes
}

/**
 * `onRemoved(key)` runs synchronously whenever an entry leaves the tier or is replaced by another
 * (delete, set over it, LRU eviction, clear): worker threads' local copies are dropped then.
 */
export function createMemoryTier(maxBytes: number, onRemoved: (key: string) => void): MemoryTier {
  return new LRUCache<string, MemoryEntry>({
    maxSize: maxBytes,
    sizeCalculation: memoryEntryCost,
    dispose: (_entry, key) => onRemoved(key),
  })
}

let lastGeneration = 0

/** `generation`: given only for a worker's copy of the coordinator's entry (worker-link.ts). */
export function memoryEntry(obj: StoredObject, body: Buffer, isPrefetched: boolean, generation?: number): MemoryEntry {
  return {
    obj,
    body,
    isPrefetched,
    hitHeaders: null,
    hitAgeSec: -1,
    hitResult: null,
    generation: generation ?? ++lastGeneration,
  }
}

/** A stored entry's object changed in place (a 304's headers, a soft purge): a new version. */
export function replaceObject(entry: MemoryEntry, obj: StoredObject): void {
  entry.obj = obj
  entry.hitHeaders = null
  entry.hitResult = null
  entry.generation = ++lastGeneration
}

/**
 * Answer one request from a memory entry: the engine's memory hits (after its bookkeeping: LRU,
 * counters, prefetch marks) and a worker thread's local hits, so both answer exactly alike. The
 * plain GET/HEAD hit reuses the entry's rendered head while its Age second holds; conditionals and
 * Range go through planStored (RFC 9110 §13.2.2, §14).
 */
export function serveEntry(
  entry: MemoryEntry,
  req: ServeRequest,
  sink: ResponseSink,
  outcome: CacheOutcome,
  upstreamMs: number | null,
  now: number,
): ServeResult {
  const obj = entry.obj
  const h = req.headers
  if (
    outcome === 'HIT' &&
    h['range'] === undefined &&
    h['if-none-match'] === undefined &&
    h['if-modified-since'] === undefined &&
    h['if-match'] === undefined &&
    h['if-unmodified-since'] === undefined
  ) {
    const ageSec = ageSeconds(obj, now)
    let headers = entry.hitHeaders
    if (headers === null || entry.hitAgeSec !== ageSec) {
      // Replaced, never mutated: a sink may keep the object it was given.
      headers = responseHeaders(obj.headers, 'HIT', ageSec)
      entry.hitHeaders = headers
      entry.hitAgeSec = ageSec
    }
    sink.start(obj.status, headers, obj.size)
    if (req.method === 'HEAD') {
      sink.end()
      return { outcome, status: obj.status, bytes: 0, upstreamMs }
    }
    sink.end(entry.body)
    if (upstreamMs !== null) return { outcome, status: obj.status, bytes: obj.size, upstreamMs }
    return (entry.hitResult ??= { outcome, status: obj.status, bytes: obj.size, upstreamMs })
  }
  const plan = planStored(obj, req, outcome, now)
  sink.start(plan.status, plan.headers, plan.contentLength)
  if (plan.end > plan.start) sink.end(entry.body.subarray(plan.start, plan.end))
  else sink.end()
  return { outcome, status: plan.status, bytes: plan.end - plan.start, upstreamMs }
}

/**
 * A Buffer of `size` bytes for a body the memory tier keeps: over a SharedArrayBuffer when the tier
 * is shared with worker threads (postMessage shares such memory instead of copying it, so every
 * worker sends the one copy), an ordinary unpooled one otherwise.
 */
export function bodyBuffer(size: number, isShared: boolean): Buffer {
  return isShared ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.allocUnsafeSlow(size)
}

/**
 * A body the memory tier may keep: one that owns exactly its bytes (in shared memory when
 * `isShared`). An upstream chunk is a view of the socket read it arrived in (status line and
 * headers included), and a small Buffer.concat is a view of Node's shared 8 KiB pool; kept as is,
 * a 60-byte 404 body pinned ~700 bytes.
 */
export function ownedBody(body: Buffer | null, isShared = false): Buffer | null {
  if (body === null) return body
  const isOwned = body.byteOffset === 0 && body.buffer.byteLength === body.length
  if (isOwned && (!isShared || body.buffer instanceof SharedArrayBuffer)) return body
  const owned = bodyBuffer(body.length, isShared)
  body.copy(owned)
  return owned
}
