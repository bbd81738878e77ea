// Node registry and purge fan-out: shields and edges register their admin URL with the tier
// secret; admins list nodes and purge a prefix everywhere (docs/architecture.md §7.4, §9).
import { TIER_SECRET_HEADER } from '../../../shared/config/index.js'
import { VcdnError } from '../../../shared/errors/index.js'
import { secretEquals, sendJson } from '../../../shared/http/index.js'
import { CONTENT_ROOT, storeKeyOf } from '../../../shared/namespace/index.js'
import { validateStorePrefix } from '../../../shared/store/index.js'
import { principal, readJson, reqString, type ApiDeps } from './context.js'
import type { Router } from './router.js'

const NODE_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/

export function nodeRoutes(router: Router, deps: ApiDeps): void {
  router.add('GET', '/v1/nodes', ({ req, res }) => {
    principal(req, deps, ['admin'])
    sendJson(res, 200, { nodes: deps.purger.nodes() })
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
    deps.meta.upsertNode({ id, tier, adminUrl, nowMs: deps.now() })
    sendJson(res, 200, { id, tier, adminUrl })
  })

  router.add('POST', '/v1/purge', async ({ req, res }) => {
    principal(req, deps, ['admin'])
    const body = await readJson(req)
    const prefix = reqString(body['prefix'], 'prefix', 1024)
    try {
      if (!prefix.startsWith(CONTENT_ROOT)) throw new Error('outside the content root')
      validateStorePrefix(storeKeyOf(prefix))
    } catch {
      throw new VcdnError('ERR_PURGE_BODY')
    }
    sendJson(res, 200, { prefix, nodes: await deps.purger.purge(prefix) })
  })
}
