export {
  UpstreamClient,
  type UpstreamClientOptions,
  type UpstreamRequestInit,
  type UpstreamResponse,
} from './client.js'
export { UpstreamSet, type UpstreamSetOptions, type UpstreamLogger, type UpstreamStats } from './upstream-set.js'
export { hrwScore, hrwSeed } from './hrw.js'
