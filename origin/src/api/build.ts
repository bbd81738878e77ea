import type { ApiDeps } from './context.js'
import { jobRoutes } from './jobs.js'
import { nodeRoutes } from './nodes.js'
import { Router } from './router.js'
import { s3UploadRoutes } from './s3-uploads.js'
import { uploadRoutes } from './uploads.js'
import { videoRoutes } from './videos.js'
import { captionRoutes } from './captions.js'
import { webhookRoutes } from './webhooks.js'

export function buildApiRouter(deps: ApiDeps): Router {
  const router = new Router()
  videoRoutes(router, deps)
  captionRoutes(router, deps)
  uploadRoutes(router, deps)
  s3UploadRoutes(router, deps)
  jobRoutes(router, deps)
  nodeRoutes(router, deps)
  webhookRoutes(router, deps)
  return router
}
