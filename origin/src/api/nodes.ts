// Node registry and purge fan-out: shields and edges register their admin URL with the tier
// secret; admins list nodes and purge a prefix or a key everywhere, hard or soft (docs/architecture.md
// §7.4, §9).
import { TIER_SECRET_HEADER } from '../../../shared/config/index.js'
import { VcdnError } from '../../../shared/errors/index.js'
import { secretEquals, sendJson } from '../../../shared/http/index.js'
import { CONTENT_ROOT, MAX_KEY_BYTES, storeKeyOf, validatePath } from '../../../shared/namespace/index.js'
import { validateStorePrefix } from '../../../shared/store/index.js'
import { principal, readJson, reqString, type ApiDeps } from './context.js'
import type { PurgeTarget } from '../node-fanout.js'
import type { Router } from './router.js'

const NODE_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/
/** A node further behind than this purges everything instead of replaying. */
const MAX_REPLAYED_PURGES = 1000

export function nodeRoutes(router: Router, deps: ApiDeps): void {
  router.add('GET', '/v1/nodes', ({ req, res }) => {
    principal(req, deps, ['admin'])
    sendJson(res, 200, { nodes: deps.nodes.nodes() })
  })

  router.add('POST', '/v1/nodes', async ({ req, res }) => {
    if (!secretEquals(req.headers[TIER_SECRET_HEADER], deps.config.tierSecret)) throw new VcdnError('ERR_TIER_AUTH')
    const body = await readJson(req)
    const id = reqString(body['id'], 'id', 128)
    const tier = reqString(body['tier'], 'tier', 16)
    const adminUrl = reqString(body['adminUrl'], 'adminUrl', 512).replace(/\/+$/, '')
    if (!NODE_ID_RE.test(id)) throw new VcdnError('ERR_API_BODY', 'id must match [A-Za-z0-9._:-]{1,128}')
    if (tier !== 'shield' && tier !== 'edge') throw new VcdnError('ERR_API_BODY', 'tier must be shield or edge')
    if (!/^https?:\/\/[^/]+/.test(adminUrl)) throw new VcdnError('ERR_API_BODY', 'adminUrl must be an http(s) URL')
    const last = body['lastPurgeSeq']
    if (last !== undefined && last !== null && !(Number.isSafeInteger(last) && (last as number) >= 0))
      throw new VcdnError('ERR_API_BODY', 'lastPurgeSeq must be a non-negative integer or null')
    deps.meta.upsertNode({ id, tier, adminUrl, nowMs: deps.now() })
    // With control events over Kafka this is also a node's acknowledgement of a purge (node-fanout.ts).
    if (typeof last === 'number') deps.nodes.noteApplied(id, last)
    // Registration and heartbeat in one: the node says which purge generation it applied last and
    // gets the purges it missed while away (a new node, null, starts at the current generation).
    const purgeSeq = deps.meta.purgeSeq()
    const missed =
      typeof last === 'number' ? deps.meta.purgesSince(last, MAX_REPLAYED_PURGES) : { purges: [], isComplete: true }
    sendJson(res, 200, { id, tier, adminUrl, purgeSeq, purges: missed.purges, isComplete: missed.isComplete })
  })

  // Hard (the objects go) or soft (they stay, stale: each node revalidates on the next request),
  // by prefix or by key.
  router.add('POST', '/v1/purge', async ({ req, res }) => {
    principal(req, deps, ['admin'])
    const body = await readJson(req)
    const soft = body['soft'] ?? false
    if (typeof soft !== 'boolean') throw new VcdnError('ERR_PURGE_BODY')
    let target: PurgeTarget
    try {
      if (typeof body['key'] === 'string' && body['prefix'] === undefined) {
        const key = reqString(body['key'], 'key', MAX_KEY_BYTES)
        if (!key.startsWith(CONTENT_ROOT)) throw new Error('outside the content root')
        target = { key: validatePath(key) }
      } else {
        const prefix = reqString(body['prefix'], 'prefix', MAX_KEY_BYTES)
        if (!prefix.startsWith(CONTENT_ROOT)) throw new Error('outside the content root')
        validateStorePrefix(storeKeyOf(prefix))
        target = { prefix }
      }
    } catch {
      throw new VcdnError('ERR_PURGE_BODY')
    }
    const mode = soft ? 'soft' : 'hard'
    const report = await deps.nodes.purgeReport(target, mode)
    sendJson(res, 200, { ...target, mode, ...report })
  })
}
