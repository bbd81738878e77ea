import { commonSchema, loadConfig, type CommonConfig, type LoadOptions, type Schema } from '../../shared/config/index.js'

export const originSchema = {
  ...commonSchema,
  dataDir: { type: 'string', isRequired: true, doc: 'SQLite metadata and uploads' },
  store: {
    kind: { type: 'string', default: 'fs', oneOf: ['fs'], doc: 'object store kind (fs; s3 comes with scale-out)' },
    dir: { type: 'string', default: '', doc: 'fs store root (default <dataDir>/store)' },
  },
  cacheControl: {
    segment: {
      type: 'string',
      default: 'public, max-age=31536000, immutable',
      doc: 'Cache-Control of segments, init segments and thumbnails (immutable, DESIGN §2)',
    },
    playlist: {
      type: 'string',
      default: 'public, max-age=60, stale-while-revalidate=30, stale-if-error=86400',
      doc: 'Cache-Control of VOD playlists and MPDs (purged on reprocess/delete)',
    },
    other: { type: 'string', default: 'public, max-age=300', doc: 'Cache-Control of anything else under /v/' },
    notFound: { type: 'string', default: 'public, max-age=10', doc: 'Cache-Control of 404s (short negative caching)' },
  },
  signingKeys: { type: 'map', default: {}, doc: 'playback token keys by kid (for signed URLs it hands out)' },
  activeKey: { type: 'string', default: '', doc: 'kid that signs playback tokens' },
  edgeBaseUrl: { type: 'string', default: '', doc: 'where playback URLs point' },
  jwt: {
    secret: { type: 'string', default: '', doc: 'control-API JWT HMAC secret' },
    issuer: { type: 'string', default: 'vcdn', doc: 'control-API JWT issuer' },
    audience: { type: 'string', default: 'vcdn-api', doc: 'control-API JWT audience' },
  },
} satisfies Schema

export interface OriginConfig extends CommonConfig {
  dataDir: string
  store: { kind: 'fs'; dir: string }
  cacheControl: { segment: string; playlist: string; other: string; notFound: string }
  signingKeys: Record<string, string>
  activeKey: string
  edgeBaseUrl: string
  jwt: { secret: string; issuer: string; audience: string }
}

export function loadOriginConfig(opts: LoadOptions): OriginConfig {
  return loadConfig<OriginConfig>(originSchema, opts)
}
