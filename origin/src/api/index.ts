export { buildApiRouter } from './build.js'
export { TrackedResponse, type Router } from './router.js'
export { tusOptionsHeaders } from './uploads.js'
export type { ApiDeps } from './context.js'
