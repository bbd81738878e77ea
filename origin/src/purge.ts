// Purge fan-out (docs/architecture.md §7.4, §9): the origin calls `POST /purge` on the admin
// listener of every registered shield and edge, in parallel, each with a timeout, and reports each
// node's outcome. Nodes come from config (`nodes`) and from self-registration (POST /v1/nodes); a
// registered node with the id of a static one replaces it.
import { TIER_SECRET_HEADER } from '../../shared/config/index.js'
import type { Logger } from '../../shared/log/index.js'
import type { NodeConfig } from './config.js'
import type { MetadataDb } from './db.js'

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

export interface PurgerOptions {
  meta: MetadataDb
  staticNodes: readonly NodeConfig[]
  tierSecret: string
  timeoutMs: number
  log: Logger
}

export class Purger {
  readonly #o: PurgerOptions

  constructor(opts: PurgerOptions) {
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
    return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  async purge(prefix: string): Promise<PurgeNodeResult[]> {
    const results = await Promise.all(this.nodes().map((n) => this.#purgeOne(n, prefix)))
    const failed = results.filter((r) => r.status !== 200)
    if (failed.length > 0) this.#o.log.warn({ prefix, failed }, 'purge did not reach every node')
    return results
  }

  async #purgeOne(node: NodeView, prefix: string): Promise<PurgeNodeResult> {
    try {
      const res = await fetch(`${node.adminUrl}/purge`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [TIER_SECRET_HEADER]: this.#o.tierSecret },
        body: JSON.stringify({ prefix }),
        signal: AbortSignal.timeout(this.#o.timeoutMs),
      })
      const text = await res.text()
      if (!res.ok) return { id: node.id, tier: node.tier, status: res.status, error: errorCodeOf(text) }
      let removed = 0
      try {
        const parsed = JSON.parse(text) as { removed?: unknown }
        if (typeof parsed.removed === 'number') removed = parsed.removed
      } catch {
        // A node that answers 200 with another body still purged; the count is unknown.
      }
      return { id: node.id, tier: node.tier, status: res.status, removed }
    } catch (err) {
      const e = err as Error
      return { id: node.id, tier: node.tier, status: 0, error: e.name === 'TimeoutError' ? 'timeout' : 'unreachable' }
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
