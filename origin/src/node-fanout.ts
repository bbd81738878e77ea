// The origin's calls to every registered shield and edge (docs/architecture.md §7.4, §9): purge
// (`POST /purge`, hard or soft, in parallel) and prewarm (`POST /prewarm`, shields first so that
// edges fill from warm shields), each node with a timeout, and each node's outcome reported. Nodes
// come from config (`nodes`) and from self-registration (POST /v1/nodes); a registered node with
// the id of a static one replaces it.
//
// With control events over Kafka (`control.kind = "kafka"`, a ControlPublisher) nothing is called:
// the purge or prewarm is published on the control topic, which every node consumes. A purge's
// answer is then "published at offset N" and, per registered node, whether it acknowledged the
// purge within `timeoutMs`: a node acknowledges by heartbeating right after it applied the event,
// and the heartbeat's `lastPurgeSeq` (noteApplied) reaching the purge's seq is the acknowledgement.
// A prewarm's answer is the offset only (each node is listed with status 202: it fills on its own).
import { randomUUID } from 'node:crypto'
import type { PrewarmEvent } from '../../shared/bus/index.js'
import { TIER_SECRET_HEADER } from '../../shared/config/index.js'
import type { Logger } from '../../shared/log/index.js'
import type { NodeConfig } from './config.js'
import type { ControlPublisher, Published } from './control-publisher.js'
import type { MetadataDb, PurgeTarget } from './db.js'

export type { PurgeTarget }

export interface NodeView {
  id: string
  tier: string
  adminUrl: string
  source: 'config' | 'registered'
  lastSeenAtMs: number | null
}

export interface PurgeNodeResult {
  id: string
  tier: string
  /** The node's HTTP status; 0 when it could not be reached. */
  status: number
  removed?: number
  /** With control events over Kafka: the purge generation the node last reported (null: none seen). */
  appliedSeq?: number | null
  error?: string
}

/** What a purge or prewarm published on the control topic (Kafka only). */
export interface ControlReport {
  /** The purge's generation (purges only). */
  seq?: number
  topic: string
  offset?: number | null
  /** ERR_CONTROL_UNAVAILABLE when the broker did not acknowledge the event in time. */
  error?: string
}

export interface PrewarmNodeResult {
  id: string
  tier: string
  /** The node's HTTP status; 0 when it could not be reached. */
  status: number
  present?: number
  filled?: number
  joined?: number
  failed?: number
  error?: string
}

export interface NodeFanoutOptions {
  meta: MetadataDb
  staticNodes: readonly NodeConfig[]
  tierSecret: string
  /** Per node, for a purge. */
  timeoutMs: number
  /** Per node, for a prewarm (it fetches every key it is sent). */
  prewarmTimeoutMs: number
  log: Logger
  now: () => number
  /** Control events over Kafka instead of HTTP calls (docs/architecture.md §9); null or absent: HTTP. */
  control?: ControlPublisher | null
}

export class NodeFanout {
  readonly #o: NodeFanoutOptions
  /** The purge generation each node (by id) last reported in a heartbeat since this origin started. */
  readonly #applied = new Map<string, number>()
  /** Woken whenever a node reports a generation (owned by purgeReport's waits). */
  readonly #waiters = new Set<() => void>()

  constructor(opts: NodeFanoutOptions) {
    this.#o = opts
  }

  /** A node's heartbeat reported the purge generation it applied last (POST /v1/nodes). */
  noteApplied(id: string, seq: number): void {
    if (seq <= (this.#applied.get(id) ?? -1)) return
    this.#applied.set(id, seq)
    for (const wake of this.#waiters) wake()
  }

  nodes(): NodeView[] {
    const byId = new Map<string, NodeView>()
    for (const n of this.#o.staticNodes) byId.set(n.id, { ...n, source: 'config', lastSeenAtMs: null })
    for (const n of this.#o.meta.listNodes()) {
      byId.set(n.id, {
        id: n.id,
        tier: n.tier,
        adminUrl: n.adminUrl,
        source: 'registered',
        lastSeenAtMs: n.lastSeenAtMs,
      })
    }
    // One admin listener is one node, whatever ids it was registered under: the latest wins.
    const byAdminUrl = new Map<string, NodeView>()
    for (const n of byId.values()) {
      const seen = byAdminUrl.get(n.adminUrl)
      if (seen === undefined || (n.lastSeenAtMs ?? 0) > (seen.lastSeenAtMs ?? 0)) byAdminUrl.set(n.adminUrl, n)
    }
    return [...byAdminUrl.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  /**
   * Record the purge as the next generation (a node that is away replays it when it registers
   * again), then call every node now.
   */
  async purge(target: PurgeTarget, mode: 'hard' | 'soft' = 'hard'): Promise<PurgeNodeResult[]> {
    return (await this.purgeReport(target, mode)).nodes
  }

  /** purge(), with what was published on the control topic when control events go over Kafka. */
  async purgeReport(
    target: PurgeTarget,
    mode: 'hard' | 'soft' = 'hard',
  ): Promise<{ nodes: PurgeNodeResult[]; control?: ControlReport }> {
    const seq = this.#o.meta.appendPurge(target, mode, this.#o.now())
    const control = this.#o.control
    if (control !== undefined && control !== null) return this.#purgeByControl(control, target, mode, seq)
    const results = await Promise.all(this.nodes().map((n) => this.#purgeOne(n, target, mode, seq)))
    const failed = results.filter((r) => r.status !== 200)
    if (failed.length > 0) this.#o.log.warn({ ...target, mode, failed }, 'purge did not reach every node')
    return { nodes: results }
  }

  async #purgeByControl(
    control: ControlPublisher,
    target: PurgeTarget,
    mode: 'hard' | 'soft',
    seq: number,
  ): Promise<{ nodes: PurgeNodeResult[]; control: ControlReport }> {
    const nodes = this.nodes()
    let published: Published
    try {
      published = await control.publish({ v: 1, type: 'purge', seq, target, mode, atMs: this.#o.now() })
    } catch (err) {
      const code = isCoded(err) ? err.code : 'ERR_CONTROL_UNAVAILABLE'
      // Still in the purge log: every registered node applies it at its next heartbeat.
      this.#o.log.warn({ err, ...target, mode, seq }, 'purge not published on the control topic')
      return {
        nodes: nodes.map((n) => ({ id: n.id, tier: n.tier, status: 0, appliedSeq: this.#appliedOf(n), error: code })),
        control: { seq, topic: control.topic, error: code },
      }
    }
    await this.#waitApplied(nodes, seq, this.#o.timeoutMs)
    const results = nodes.map((n): PurgeNodeResult => {
      const appliedSeq = this.#appliedOf(n)
      return appliedSeq !== null && appliedSeq >= seq
        ? { id: n.id, tier: n.tier, status: 200, appliedSeq }
        : { id: n.id, tier: n.tier, status: 0, appliedSeq, error: 'unacknowledged' }
    })
    const late = results.filter((r) => r.status !== 200)
    if (late.length > 0)
      this.#o.log.warn({ ...target, mode, seq, late }, 'purge not acknowledged by every node in time')
    return { nodes: results, control: { seq, ...published } }
  }

  #appliedOf(n: NodeView): number | null {
    return this.#applied.get(n.id) ?? null
  }

  /** Until every node reported `seq` or later, or `timeoutMs` passed. */
  async #waitApplied(nodes: readonly NodeView[], seq: number, timeoutMs: number): Promise<void> {
    const isDone = (): boolean => nodes.every((n) => (this.#appliedOf(n) ?? -1) >= seq)
    const deadline = performance.now() + timeoutMs
    while (!isDone()) {
      const leftMs = deadline - performance.now()
      if (leftMs <= 0) return
      let wake = (): void => undefined
      let timer: NodeJS.Timeout | undefined
      await new Promise<void>((res) => {
        wake = res
        timer = setTimeout(res, leftMs)
        this.#waiters.add(wake)
      })
      clearTimeout(timer)
      this.#waiters.delete(wake)
    }
  }

  /** Every shield prefetches `keys`, then every edge (its fills then find the shields warm). */
  async prewarm(keys: readonly string[]): Promise<PrewarmNodeResult[]> {
    return (await this.prewarmReport(keys, '')).nodes
  }

  /** prewarm(), with what was published on the control topic when control events go over Kafka. */
  async prewarmReport(
    keys: readonly string[],
    videoId: string,
  ): Promise<{ nodes: PrewarmNodeResult[]; control?: ControlReport }> {
    const nodes = this.nodes()
    const control = this.#o.control
    if (control !== undefined && control !== null) {
      const event: PrewarmEvent = {
        v: 1,
        type: 'prewarm',
        id: randomUUID(),
        videoId,
        keys: [...keys],
        atMs: this.#o.now(),
      }
      try {
        const published = await control.publish(event)
        // Accepted: every node fills on its own as it reads the event; no counts come back.
        return { nodes: nodes.map((n) => ({ id: n.id, tier: n.tier, status: 202 })), control: published }
      } catch (err) {
        const code = isCoded(err) ? err.code : 'ERR_CONTROL_UNAVAILABLE'
        this.#o.log.warn({ err, videoId, keys: keys.length }, 'prewarm not published on the control topic')
        return {
          nodes: nodes.map((n) => ({ id: n.id, tier: n.tier, status: 0, error: code })),
          control: { topic: control.topic, error: code },
        }
      }
    }
    const shields = await Promise.all(nodes.filter((n) => n.tier !== 'edge').map((n) => this.#prewarmOne(n, keys)))
    const edges = await Promise.all(nodes.filter((n) => n.tier === 'edge').map((n) => this.#prewarmOne(n, keys)))
    const results = [...shields, ...edges]
    const failed = results.filter((r) => r.status !== 200 || (r.failed ?? 0) > 0)
    if (failed.length > 0) this.#o.log.warn({ keys: keys.length, failed }, 'prewarm did not complete on every node')
    return { nodes: results }
  }

  async #prewarmOne(node: NodeView, keys: readonly string[]): Promise<PrewarmNodeResult> {
    const reply = await this.#post(node, '/prewarm', { keys }, this.#o.prewarmTimeoutMs)
    if ('error' in reply) return { id: node.id, tier: node.tier, ...reply }
    const counts = (reply.body ?? {}) as Record<string, unknown>
    const count = (name: string): number => (typeof counts[name] === 'number' ? counts[name] : 0)
    return {
      id: node.id,
      tier: node.tier,
      status: reply.status,
      present: count('present'),
      filled: count('filled'),
      joined: count('joined'),
      failed: count('failed'),
    }
  }

  async #purgeOne(node: NodeView, target: PurgeTarget, mode: 'hard' | 'soft', seq: number): Promise<PurgeNodeResult> {
    const body = { ...target, ...(mode === 'soft' ? { soft: true } : {}), seq }
    const reply = await this.#post(node, '/purge', body, this.#o.timeoutMs)
    if ('error' in reply) return { id: node.id, tier: node.tier, ...reply }
    // A node that answers 200 with another body still purged; the count is unknown (0).
    const removed = (reply.body as { removed?: unknown } | null)?.removed
    return { id: node.id, tier: node.tier, status: reply.status, removed: typeof removed === 'number' ? removed : 0 }
  }

  /** POST JSON to a node's admin listener: its 200 body (parsed, null if not JSON), or a status and error. */
  async #post(
    node: NodeView,
    path: string,
    body: unknown,
    timeoutMs: number,
  ): Promise<{ status: number; body: unknown } | { status: number; error: string }> {
    try {
      const res = await fetch(`${node.adminUrl}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [TIER_SECRET_HEADER]: this.#o.tierSecret },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      })
      const text = await res.text()
      if (!res.ok) return { status: res.status, error: errorCodeOf(text) }
      try {
        return { status: res.status, body: JSON.parse(text) as unknown }
      } catch {
        return { status: res.status, body: null }
      }
    } catch (err) {
      const e = err as Error
      return { status: 0, error: e.name === 'TimeoutError' ? 'timeout' : 'unreachable' }
    }
  }
}

function isCoded(err: unknown): err is { code: string } {
  return typeof (err as { code?: unknown } | null)?.code === 'string'
}

function errorCodeOf(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown } }
    if (typeof parsed.error?.code === 'string') return parsed.error.code
  } catch {
    // not JSON
  }
  return 'ERR_UPSTREAM_STATUS'
}
