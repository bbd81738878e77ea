// The messages between a cache tier's coordinator (the main thread: engine, disk tier, index, fill
// table, upstreams, admin) and its worker threads (the public listener and the tier's request
// logic), docs/architecture.md §12. One MessagePort per worker (its parentPort); messages on a port
// arrive in order. Bodies travel as Uint8Arrays over SharedArrayBuffers: postMessage shares such
// memory instead of copying it.
import { isMainThread, workerData } from 'node:worker_threads'
import type { ServeResult } from '../cache/index.js'
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

/** A served request's end: its result, or the coded error the engine threw (none: a crash). */
export interface Done {
  readonly t: 'done'
  readonly id: number
  readonly result?: ServeResult
  readonly code?: ErrorCode
  /** Why, when the engine failed with something other than a coded error (logged by the worker). */
  readonly detail?: string
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
  | { readonly t: 'prefetch'; readonly id: number; readonly key: string }
  | { readonly t: 'peekBody'; readonly id: number; readonly key: string; readonly maxBytes: number }
  /** Finished requests since the last batch: [status, bytes, seconds] per request, caches beside. */
  | { readonly t: 'counts'; readonly numbers: number[]; readonly caches: string[]; readonly refused: string[] }
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
  /** The coordinator consumed a pass's request body chunk. */
  | { readonly t: 'bodyAcked'; readonly id: number }
  | { readonly t: 'reply'; readonly id: number; readonly value: unknown }
  /** Stop: close the listener, drain for up to drainTimeoutMs, end the thread. */
  | { readonly t: 'close'; readonly drainTimeoutMs: number }
  /** Fail as a crash would (the admin route POST /workers/restart): the coordinator replaces the worker. */
  | { readonly t: 'crash' }
  /** Re-read the certificate files (SIGHUP to the process): every worker has its own HTTPS listener. */
  | { readonly t: 'reloadTls'; readonly id: number; readonly reason: string }
