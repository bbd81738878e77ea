// The messages between a cache tier's coordinator (the main thread: engine, disk tier, index, fill
// table, upstreams, admin) and its worker threads (the public listener and the tier's request
// logic), docs/architecture.md §9.1. One MessagePort per worker (its parentPort); messages on a port
// arrive in order. Bodies travel as Uint8Arrays over SharedArrayBuffers: postMessage shares such
// memory instead of copying it.
import { isMainThread, workerData } from 'node:worker_threads'
import type { ServeResult, StoredObject } from '../cache/index.js'
import type { ErrorCode } from '../errors/index.js'
import type { HeaderMap } from '../http/index.js'

/** What a worker thread is started with (Worker workerData). */
export interface TierWorkerData {
  readonly vcdnTierWorker: {
    /** 1-based, stable across replacements of the worker in the same slot. */
    readonly index: number
    /** The public port, already checked free by the coordinator: every worker binds it with SO_REUSEPORT. */
    readonly port: number
    /** The HTTPS port when HTTPS listens beside plain HTTP (tls.listen), checked and shared the same way. */
    readonly tlsPort?: number
    /** The loopback address the coordinator's PROXY v1 front end connects from (proxy-v1.ts). */
    readonly proxyFrontEnd?: string
    /**
     * One Int32 counting the coordinator's `forget` broadcasts (worker-link.ts serveHit), and its
     * value when this worker was started: a worker answers from its local map only while it has
     * read as many `forget`s as were sent.
     */
    readonly invalidations: SharedArrayBuffer
    readonly invalidationsSeen: number
  }
}

/** This thread's worker data when it is a cache tier's worker thread, else null. */
export function tierWorkerData(): TierWorkerData['vcdnTierWorker'] | null {
  if (isMainThread) return null
  const data = workerData as Partial<TierWorkerData> | null | undefined
  return data?.vcdnTierWorker ?? null
}

/** True in a cache tier's worker thread: its main.ts serves and leaves signals to the coordinator. */
export function isTierWorker(): boolean {
  return tierWorkerData() !== null
}

/**
 * What a worker needs to answer a key itself (docs/architecture.md §9.1): the coordinator's memory
 * entry for it, its body a view of the entry's SharedArrayBuffer (shared, not copied).
 */
export interface LocalEntry {
  readonly obj: StoredObject
  readonly body: Uint8Array
  readonly generation: number
  /** For a variant (`obj.key` is a variant key): the Vary fields its target's requests are selected by. */
  readonly vary?: readonly string[]
}

/** A served request's end: its result, or the coded error the engine threw (none: a crash). */
export interface Done {
  readonly t: 'done'
  readonly id: number
  readonly result?: ServeResult
  readonly code?: ErrorCode
  /** Why, when the engine failed with something other than a coded error (logged by the worker). */
  readonly detail?: string
  /** The request's key is a fresh memory entry now: the worker answers it itself from now on. */
  readonly local?: LocalEntry
}

/** Hits a worker answered from its local copy of one memory entry version since its last batch. */
export interface LocalHits {
  readonly key: string
  readonly generation: number
  readonly count: number
}

export type ToCoordinator =
  | { readonly t: 'ready' }
  | {
      readonly t: 'serve'
      readonly id: number
      readonly method: 'GET' | 'HEAD'
      readonly key: string
      readonly headers: HeaderMap
      /** Every request header (ServeRequest.source), when the tier passes them. */
      readonly source?: HeaderMap
      /** The version of the key's memory entry the worker holds (it was stale): not sent again. */
      readonly held?: number
    }
  | {
      readonly t: 'pass'
      readonly id: number
      readonly method: string
      readonly key: string
      readonly headers: HeaderMap
    }
  /** A pass's request body, chunk by chunk (each acknowledged: backpressure); null: its end. */
  | { readonly t: 'body'; readonly id: number; readonly chunk: Uint8Array | null }
  /** The worker's sink took a written chunk: the coordinator may send the next. */
  | { readonly t: 'acked'; readonly id: number }
  /** The client went away. */
  | { readonly t: 'aborted'; readonly id: number }
  /**
   * Finished requests since the last batch: [status, bytes, seconds] per request, caches beside;
   * refusals by code; the hits answered locally by key (the engine counts them as its own); the
   * keys served (each once, in first-served order, its latest status beside: the edge's prefetcher
   * runs in the coordinator) and the keys clients named as their next request (CMCD nor).
   */
  | {
      readonly t: 'counts'
      readonly numbers: number[]
      readonly caches: string[]
      readonly refused: string[]
      readonly localHits: LocalHits[]
      readonly served: string[]
      readonly servedStatus: number[]
      readonly hints: string[]
    }
  /** The answer to a reloadTls: true when the worker serves the files as they are now. */
  | { readonly t: 'tlsReloaded'; readonly id: number; readonly ok: boolean }

export type ToWorker =
  | {
      readonly t: 'start'
      readonly id: number
      readonly status: number
      readonly headers: HeaderMap
      readonly contentLength?: number
    }
  | { readonly t: 'write'; readonly id: number; readonly chunk: Uint8Array }
  | { readonly t: 'end'; readonly id: number; readonly chunk?: Uint8Array }
  | { readonly t: 'abort'; readonly id: number }
  | Done
  /**
   * `key`'s memory entry left the tier, was replaced or changed: the worker drops its local copy
   * (sent to every worker, after the Int32 in TierWorkerData.invalidations was incremented).
   */
  | { readonly t: 'forget'; readonly key: string }
  /** The coordinator consumed a pass's request body chunk. */
  | { readonly t: 'bodyAcked'; readonly id: number }
  /** Stop: close the listener, drain for up to drainTimeoutMs, end the thread. */
  | { readonly t: 'close'; readonly drainTimeoutMs: number }
  /** Fail as a crash would (the admin route POST /workers/restart): the coordinator replaces the worker. */
  | { readonly t: 'crash' }
  /** Re-read the certificate files (SIGHUP to the process): every worker has its own HTTPS listener. */
  | { readonly t: 'reloadTls'; readonly id: number; readonly reason: string }
