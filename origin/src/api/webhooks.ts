// /v1/webhooks/deliveries: the most recent webhook deliveries (admin), with their status, attempts,
// last error and next attempt (docs/architecture.md §7.5).
import { VcdnError } from '../../../shared/errors/index.js'
import { sendJson } from '../../../shared/http/index.js'
import { principal, type ApiDeps } from './context.js'
import type { Router } from './router.js'

const DEFAULT_PAGE = 50
const MAX_PAGE = 500

export function webhookRoutes(router: Router, deps: ApiDeps): void {
  router.add('GET', '/v1/webhooks/deliveries', ({ req, res, query }) => {
    principal(req, deps, ['admin'])
    const limitText = query.get('limit')
    const limit = limitText === null ? DEFAULT_PAGE : Number(limitText)
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE)
      throw new VcdnError('ERR_API_BODY', `limit must be 1..${MAX_PAGE}`)
    sendJson(res, 200, { deliveries: deps.webhooks.list(limit) })
  })
}
