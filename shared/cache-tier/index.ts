// What the edge and the shield share around the cache engine (docs/architecture.md §1): the tier,
// its config fragment, and the secret header name tiers authenticate with.
export { buildCacheTier, type CacheTier, type CacheTierOptions, type Gate, type ServeLocal } from './tier.js'
export {
  cacheTierProblems,
  workerCount,
  cacheTierSchema,
  pathsProblems,
  proxyProtocolProblems,
  queryProblems,
  type CacheTierConfig,
} from './config.js'
export { TIER_SECRET_HEADER } from '../config/index.js'
export { type RewriteFor } from './tier.js'
export { isTierWorker } from './worker-protocol.js'
export type { TierEngine } from './worker-link.js'
export { REWRITE_MAX_BYTES, RewritingSink, type BodyRewrite } from './body-rewrite.js'
export { cmcdOf, parseCmcd, type Cmcd } from './cmcd.js'
