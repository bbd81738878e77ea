// The origin's calls to every registered shield and edge (docs/architecture.md §7.4, §9): purge
// (`POST /purge`, hard or soft, in parallel) and prewarm (`POST /prewarm`, shields first so that
// edges fill from warm shields), each node with a timeout, and each node's outcome reported. Nodes
// come from config (`nodes`) and from self-registration (POST /v1/nodes); a registered node with
// the id of a static one replaces it.
import { TIER_SECRET_HEADER } from '../../shared/config/index.js'
import type { Logger } from '../../shared/log/index.js'
import type { NodeConfig } from './config.js'
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
}

export class NodeFanout {
  readonly #o: NodeFanoutOptions

  constructor(opts: NodeFanoutOptions) {
    this.#o = opts
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
    const seq = this.#o.meta.appendPurge(target, mode, this.#o.now())
    const results = await Promise.all(this.nodes().map((n) => this.#purgeOne(n, target, mode, seq)))
    const failed = results.filter((r) => r.status !== 200)
    if (failed.length > 0) this.#o.log.warn({ ...target, mode, failed }, 'purge did not reach every node')
    return results
  }

  /** Every shield prefetches `keys`, then every edge (its fills then find the shields warm). */
  async prewarm(keys: readonly string[]): Promise<PrewarmNodeResult[]> {
    const nodes = this.nodes()
    const shields = await Promise.all(nodes.filter((n) => n.tier !== 'edge').map((n) => this.#prewarmOne(n, keys)))
    const edges = await Promise.all(nodes.filter((n) => n.tier === 'edge').map((n) => this.#prewarmOne(n, keys)))
    const results = [...shields, ...edges]
    const failed = results.filter((r) => r.status !== 200 || (r.failed ?? 0) > 0)
    if (failed.length > 0) this.#o.log.warn({ keys: keys.length, failed }, 'prewarm did not complete on every node')
    return results
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

function errorCodeOf(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown } }
    if (typeof parsed.error?.code === 'string') return parsed.error.code
  } catch {
    // not JSON
  }
  return 'ERR_UPSTREAM_STATUS'
}
