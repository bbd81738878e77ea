// The configuration the edge and the shield share (docs/architecture.md §10.1): its type, its
// schema fragment and the checks the schema cannot express.
import {
  corsProblems,
  frontEndTarget,
  tlsProblems,
  trustedProxiesProblems,
  type CorsOptions,
  type TlsConfig,
} from '../http/index.js'
import { availableParallelism } from 'node:os'
import { controlProblems, controlSchema, type ControlConfig } from '../bus/index.js'
import { CONTENT_ROOT } from '../namespace/index.js'

export interface CacheTierConfig {
  listen: { host: string; port: number }
  admin: { host: string; port: number }
  tierSecret: string
  /** Seconds a response may wait on a client that takes no bytes (shared/http sendTimeoutSchema). */
  sendTimeoutS?: number
  /** HTTPS and CORS of the public listener (shared/http tlsSchema, cors options). */
  tls?: TlsConfig
  cors?: CorsOptions
  /** Path prefixes this tier serves (`/v/` for video; `/` for any path: a cache in front of any origin). */
  paths: readonly string[]
  accessLog: boolean
  /** CIDRs of reverse proxies whose X-Forwarded-For is believed (shared/http TrustedProxies). */
  trustedProxies?: readonly string[]
  /** PROXY protocol v2 on the plain-HTTP listener, from trustedProxies peers only (shared/http). */
  proxyProtocol?: boolean
  /** PROXY protocol v1 on a listener of its own in front of the plain one (shared/http proxy-v1.ts); no port: off. */
  proxyProtocolV1?: { host: string; port?: number | undefined }
  drainTimeoutMs: number
  /** Request-serving threads on the public port (docs/architecture.md §9.1); 1: the main thread serves; 0: one per core. */
  workers?: number
  cache: {
    dir: string
    maxBytes: number
    memoryMaxBytes: number
    memoryObjectMaxBytes: number
    negativeTtlMs: number
    /** Unset: playlists without explicit freshness get RFC 9111 §4.2.2 heuristics only. */
    playlistTtlMs?: number | undefined
    /** What the query string adds to the key and the upstream request: all, none, or queryParams. */
    query: 'keep' | 'ignore' | 'list'
    queryParams: readonly string[]
  }
  /** Self-registration with the origin (registration.ts). */
  register: { isEnabled: boolean; origin: string; id: string; adminUrl: string; heartbeatS: number }
  /** How purges and prewarms arrive: the origin's HTTP calls, or the Kafka control topic (control-consumer.ts). */
  control: ControlConfig
  upstream: {
    connections: number
    headersTimeoutMs: number
    bodyTimeoutMs: number
    connectTimeoutMs: number
  }
}

/**
 * The problems with a `paths` list (empty when none): every entry is a path prefix that a key path
 * (shared/namespace validatePath) could start with — it begins with `/` and holds only printable
 * ASCII without `?`, `#` or `\\` (a query or fragment never reaches the key's path).
 */
/**
 * How many request threads `workers` asks for: 0 is one per core this process may use
 * (availableParallelism follows CPU affinity, so a tier pinned by systemd's CPUAffinity= or taskset
 * gets one per pinned core); unset is 1.
 */
export function workerCount(config: Pick<CacheTierConfig, 'workers'>): number {
  const n = config.workers ?? 1
  return n === 0 ? availableParallelism() : n
}

export function pathsProblems(paths: readonly string[], at = 'paths'): string[] {
  const problems: string[] = []
  paths.forEach((prefix, i) => {
    if (!prefix.startsWith('/')) problems.push(`${at}[${i}] must start with / (got ${JSON.stringify(prefix)})`)
    else if (!/^[\x21-\x7e]+$/.test(prefix) || /[?#\\]/.test(prefix)) {
      problems.push(`${at}[${i}] must be printable ASCII without ?, # or \\ (got ${JSON.stringify(prefix)})`)
    }
  })
  return problems
}

/** The problems with `cache.query` / `cache.queryParams` (empty when none). */
export function queryProblems(cache: Pick<CacheTierConfig['cache'], 'query' | 'queryParams'>): string[] {
  if (cache.query !== 'list') return []
  if (cache.queryParams.length === 0)
    return ['cache.queryParams must name at least one parameter when cache.query is "list"']
  return cache.queryParams.flatMap((name, i) =>
    name.length === 0 || /[&=#\s]/.test(name)
      ? [`cache.queryParams[${i}] must be a parameter name without &, =, # or spaces (got ${JSON.stringify(name)})`]
      : [],
  )
}

/**
 * The problems with `proxyProtocol` (empty when none): it needs the peers allowed to send a
 * header, and a plain-HTTP listener to read it on (uWS reads a header only after TLS decryption,
 * so HTTPS never carries one).
 */
export function proxyProtocolProblems(
  config: Pick<CacheTierConfig, 'proxyProtocol' | 'proxyProtocolV1' | 'trustedProxies' | 'tls' | 'listen'>,
): string[] {
  const problems: string[] = []
  const isPlainGone = config.tls !== undefined && config.tls.cert !== '' && config.tls.listen.port === undefined
  const keys = [
    ...(config.proxyProtocol === true ? ['proxyProtocol'] : []),
    ...(config.proxyProtocolV1?.port !== undefined ? ['proxyProtocolV1'] : []),
  ]
  for (const key of keys) {
    if ((config.trustedProxies ?? []).length === 0) {
      problems.push(`${key} needs trustedProxies: the peers allowed to send a PROXY header`)
    }
    if (isPlainGone) {
      problems.push(`${key} applies to the plain-HTTP listener; with tls.cert and no tls.listen.port there is none`)
    }
  }
  // The front end connects from a loopback IPv4 address of its own (proxy-v1.ts): IPv6 has one.
  if (keys.includes('proxyProtocolV1') && frontEndTarget(config.listen.host) === null) {
    problems.push('proxyProtocolV1 needs listen.host to be IPv4, 0.0.0.0 or :: (its front end connects over IPv4)')
  }
  return problems
}

/**
 * Every problem with the keys the edge and the shield share that their schema cannot express
 * (paths, query, TLS, CORS, trusted proxies, PROXY protocol); each tier adds its own.
 */
export function cacheTierProblems(
  config: CacheTierConfig & { tls: TlsConfig; cors: CorsOptions; trustedProxies: readonly string[] },
): string[] {
  return [
    ...pathsProblems(config.paths),
    ...queryProblems(config.cache),
    ...tlsProblems(config.tls),
    ...corsProblems(config.cors.origins),
    ...trustedProxiesProblems(config.trustedProxies),
    ...proxyProtocolProblems(config),
    ...controlProblems(config.control),
  ]
}

/** Schema fragment for the `cache` and `upstream` keys, shared by the edge and shield tables. */
export const cacheTierSchema = {
  paths: {
    type: 'string[]',
    default: [CONTENT_ROOT],
    min: 1,
    doc: 'path prefixes served (["/"] serves any path: a cache in front of any origin); others get 404',
  },
  trustedProxies: {
    type: 'string[]',
    default: [],
    doc: 'IPv4/IPv6 CIDRs of reverse proxies in front of this tier: from a peer inside one, the client address (IP-bound tokens, access log) is the right-most X-Forwarded-For entry that is not itself a trusted proxy; from any other peer X-Forwarded-For is ignored',
  },
  proxyProtocol: {
    type: 'boolean',
    default: false,
    doc: 'read a PROXY protocol v2 header on the plain-HTTP listener: the client address (IP-bound tokens, access log) is its source address; peers outside trustedProxies are closed; not on HTTPS (v1: proxyProtocolV1; docs/architecture.md §3)',
  },
  proxyProtocolV1: {
    host: { type: 'string', default: '', doc: 'PROXY protocol v1 listener address ("" = listen.host)' },
    port: {
      type: 'integer',
      min: 0,
      max: 65535,
      doc: 'PROXY protocol v1 listener port (nginx stream `proxy_protocol on`): a front end in Node reads the v1 line from trustedProxies peers (others are closed) and passes every byte to the plain listener, costing throughput (bench/README.md "PROXY v1"); prefer v2 (proxyProtocol); unset: off (docs/architecture.md §3)',
    },
  },
  workers: {
    type: 'integer',
    default: 1,
    min: 0,
    max: 256,
    doc: 'request-serving threads sharing the public port and one cache (memory tier in shared memory, one disk tier and index, one upstream fetch per key); 0: one per core this process may use; 1: the main thread serves, as before (docs/architecture.md §9.1)',
  },
  cache: {
    dir: { type: 'string', isRequired: true, doc: 'disk cache directory (index.sqlite + objects)' },
    maxBytes: { type: 'integer', default: 10 * 1024 ** 3, min: 1024 * 1024, unit: 'bytes', doc: 'disk cache budget' },
    memoryMaxBytes: { type: 'integer', default: 512 * 1024 ** 2, min: 0, unit: 'bytes', doc: 'memory tier budget' },
    memoryObjectMaxBytes: {
      type: 'integer',
      default: 8 * 1024 ** 2,
      min: 0,
      unit: 'bytes',
      doc: 'objects larger than this stay on disk only',
    },
    negativeTtlMs: { type: 'integer', default: 10_000, min: 0, unit: 'ms', doc: 'how long a 404 is cached' },
    playlistTtlMs: {
      type: 'integer',
      min: 0,
      unit: 'ms',
      doc: 'freshness of playlists when upstream states none (unset: RFC 9111 heuristics only)',
    },
    query: {
      type: 'string',
      default: 'keep',
      oneOf: ['keep', 'ignore', 'list'],
      doc: 'query string in the cache key and the upstream request: keep all (RFC 9111 §2), ignore, or list (only cache.queryParams); token and CMCD are always removed',
    },
    queryParams: {
      type: 'string[]',
      default: [],
      doc: 'with cache.query "list": the query parameters kept in the key and sent upstream',
    },
  },
  register: {
    isEnabled: {
      type: 'boolean',
      default: true,
      doc: 'register with the origin at start and heartbeat, so its purges and prewarms reach this node and purges missed while away are applied on return',
    },
    origin: {
      type: 'string',
      default: '',
      doc: 'origin base URL to register with ("" : the edge\'s origin, the shield\'s first upstream)',
    },
    id: { type: 'string', default: '', doc: 'node id at the origin ("" : <tier>-<hostname>-<admin port>)' },
    adminUrl: {
      type: 'string',
      default: '',
      doc: 'admin URL the origin calls ("" : http://<admin.host>:<admin port>; set it when the origin reaches this node by another address)',
    },
    heartbeatS: { type: 'integer', default: 30, min: 1, max: 3600, unit: 's', doc: 'seconds between registrations' },
  },
  ...controlSchema,
  upstream: {
    connections: { type: 'integer', default: 32, min: 1, doc: 'keep-alive connections per upstream' },
    headersTimeoutMs: { type: 'integer', default: 10_000, min: 1, unit: 'ms', doc: 'upstream time to headers' },
    bodyTimeoutMs: { type: 'integer', default: 30_000, min: 1, unit: 'ms', doc: 'upstream idle time mid-body' },
    connectTimeoutMs: { type: 'integer', default: 3_000, min: 1, unit: 'ms', doc: 'upstream connect timeout' },
  },
} as const
