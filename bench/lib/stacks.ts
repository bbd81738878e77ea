// The two stacks under comparison, each two cache tiers in front of the same upstream:
//   vcdn:  vcdn edge  → vcdn shield  → upstream
//   nginx: nginx edge → nginx shield → upstream   (proxy_cache + proxy_cache_lock; secure_link at the edge)
// plus the shared origin (a real `vcdn origin` over a disk store). Every process is started here
// and stopped by its own handle (pid), never by name.
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { FsStore } from '../../shared/store/index.js'
import { startTier, type TierProcess } from '../../shared/testing/index.js'
import { signedPath } from '../../shared/token/index.js'
import { NginxTier } from './nginx.js'
import { pinEdge, pinOther } from './pin.js'

export const TIER_SECRET = 'bench-tier-secret-0123456789abcdef'
export const VCDN_KEYS: Record<string, string> = { k1: 'bench-signing-key-one-0123456789abcdef' }
export const SECURE_LINK_SECRET = 'bench-secure-link-secret'
export const MIB = 1024 * 1024
/** A modest memory tier, so edge-rss has a budget worth comparing against. */
export const MEMORY_MAX_BYTES = 256 * MIB
const TOKEN_TTL_S = 6 * 3600

export type StackKind = 'vcdn' | 'nginx' | 'bare'

export interface Stack {
  readonly kind: StackKind
  readonly edgeUrl: string
  /** The edge's HTTPS listener (`https://127.0.0.1:<port>`), when started with `tls`. */
  readonly edgeTlsUrl?: string
  readonly shieldUrl: string
  /** Processes serving client requests at the edge (CPU/RSS accounting). */
  edgePids(): number[]
  /** The client path for a content path `/v/...`, with this stack's token form. */
  sign(path: string): string
  /** This tier's cache outcome (HIT, MISS, …) from a response of the edge or the shield. */
  edgeStatus(h: Headers): string | null
  shieldStatus(h: Headers): string | null
  close(): Promise<void>
}

export interface VcdnStack extends Stack {
  readonly edge: TierProcess
  readonly shield: TierProcess
}

const QUIET = { accessLog: false, logLevel: 'warn' }

/** A certificate and key (PEM files) for an edge's HTTPS listener beside its plain one. */
export interface EdgeTls {
  cert: string
  key: string
}

export async function startVcdnStack(o: {
  dir: string
  upstream: string
  memoryMaxBytes?: number
  tls?: EdgeTls
  /** The edge's `workers` (docs/architecture.md §9.1); the tier's default (1) when absent. */
  workers?: number
}): Promise<VcdnStack> {
  const cache = (name: string): Record<string, unknown> => ({
    dir: join(o.dir, name),
    maxBytes: 4 * 1024 * MIB,
    memoryMaxBytes: o.memoryMaxBytes ?? MEMORY_MAX_BYTES,
  })
  const shield = await startTier(
    'shield',
    { tierSecret: TIER_SECRET, upstreams: [o.upstream], cache: cache('vcdn-shield'), ...QUIET },
    { dir: o.dir },
  )
  let edge: TierProcess
  try {
    edge = await startTier(
      'edge',
      {
        tierSecret: TIER_SECRET,
        shields: [shield.url],
        origin: o.upstream,
        signingKeys: VCDN_KEYS,
        requireToken: true,
        cache: cache('vcdn-edge'),
        ...(o.workers !== undefined ? { workers: o.workers } : {}),
        ...QUIET,
        ...(o.tls === undefined
          ? {}
          : { tls: { ...o.tls, listen: { host: '127.0.0.1', port: 0 }, watchIntervalMs: 0 } }),
      },
      { dir: o.dir },
    )
  } catch (err) {
    await shield.stop()
    throw err
  }
  pinOther(shield.proc.pid === undefined ? [] : [shield.proc.pid])
  pinEdge(edge.proc.pid === undefined ? [] : [edge.proc.pid])
  return {
    kind: 'vcdn',
    edge,
    shield,
    edgeUrl: edge.url,
    ...(edge.tlsPort > 0 ? { edgeTlsUrl: `https://127.0.0.1:${edge.tlsPort}` } : {}),
    shieldUrl: shield.url,
    edgePids: () => (edge.proc.pid === undefined ? [] : [edge.proc.pid]),
    sign: (path) => {
      const prefix = path.slice(0, path.indexOf('/', 3) + 1) // '/v/{id}/'
      return signedPath({ prefix, path, ttlS: TOKEN_TTL_S, kid: 'k1', keys: VCDN_KEYS, nowMs: Date.now() })
    },
    edgeStatus: (h) => h.get('x-cache'),
    shieldStatus: (h) => h.get('x-cache'),
    async close() {
      await Promise.allSettled([edge.stop(), shield.stop()])
    },
  }
}

/** `/t/{md5}/{expires}/v/...` as the nginx edge's secure_link_md5 "$expires$cpath secret" expects. */
export function secureLinkPath(path: string, nowMs: number, ttlS = TOKEN_TTL_S): string {
  const expires = Math.floor(nowMs / 1000) + ttlS
  const md5 = createHash('md5').update(`${expires}${path} ${SECURE_LINK_SECRET}`).digest('base64url')
  return `/t/${md5}/${expires}${path}`
}

/** edgeWorkers: the edge's `worker_processes` (1 unless given: one core per tier, bench/README.md). */
export async function startNginxStack(o: {
  dir: string
  upstream: string
  tls?: EdgeTls
  edgeWorkers?: number
}): Promise<Stack> {
  const hostPort = (url: string): string => new URL(url).host
  const shield = await NginxTier.start({
    template: 'shield',
    dir: join(o.dir, 'nginx-shield'),
    vars: { UPSTREAM: hostPort(o.upstream), TIER_SECRET },
  })
  let edge: NginxTier
  try {
    edge = await NginxTier.start({
      template: 'edge',
      dir: join(o.dir, 'nginx-edge'),
      vars: {
        UPSTREAM: hostPort(shield.url),
        TIER_SECRET,
        SIGNING_SECRET: SECURE_LINK_SECRET,
        WORKER_PROCESSES: String(o.edgeWorkers ?? 1),
        LISTEN_OPTIONS: (o.edgeWorkers ?? 1) > 1 ? ' reuseport' : '',
      },
      ...(o.tls !== undefined ? { tls: o.tls } : {}),
    })
  } catch (err) {
    await shield.stop()
    throw err
  }
  // A worker forked later inherits its master's affinity; runLoad pins edgePids() again anyway.
  pinOther(shield.pids)
  pinEdge(edge.pids)
  const tlsUrl = edge.tlsUrl
  return {
    kind: 'nginx',
    edgeUrl: edge.url,
    ...(tlsUrl !== null ? { edgeTlsUrl: tlsUrl } : {}),
    shieldUrl: shield.url,
    edgePids: () => edge.pids,
    sign: (path) => secureLinkPath(path, Date.now()),
    edgeStatus: (h) => h.get('x-edge-cache'),
    shieldStatus: (h) => h.get('x-shield-cache'),
    async close() {
      await Promise.allSettled([edge.stop(), shield.stop()])
    },
  }
}

export interface Origin {
  readonly url: string
  readonly store: FsStore
  /** Everything the origin printed (its access lines when started with isAccessLogged). */
  output(): string
  close(): Promise<void>
}

/**
 * A real `vcdn origin` over a disk store; playlists get a long max-age so no run revalidates.
 * isAccessLogged: one access line per request on its output (what was fetched from it, by key).
 */
export async function startOrigin(dir: string, opts: { isAccessLogged?: boolean } = {}): Promise<Origin> {
  const storeDir = join(dir, 'store')
  const store = new FsStore({ dir: storeDir })
  const origin = await startTier(
    'origin',
    {
      tierSecret: TIER_SECRET,
      dataDir: join(dir, 'origin'),
      store: { kind: 'fs', dir: storeDir },
      cacheControl: { playlist: 'public, max-age=86400' },
      ...QUIET,
      ...(opts.isAccessLogged === true ? { accessLog: true, logLevel: 'info' } : {}),
    },
    { dir },
  )
  pinOther(origin.proc.pid === undefined ? [] : [origin.proc.pid])
  return {
    url: origin.url,
    store,
    output: () => origin.output(),
    async close() {
      await origin.stop()
    },
  }
}

/**
 * Fetch `path` through the stack until both tiers answer from cache: the edge's own outcome says
 * HIT, and a direct request to the shield (with the tier secret) says HIT. Bounded attempts.
 */
export async function warmUntilHit(stack: Stack, path: string, expectBytes: number): Promise<void> {
  let last = ''
  for (let attempt = 0; attempt < 20; attempt++) {
    const res = await fetch(stack.edgeUrl + stack.sign(path))
    const body = Buffer.from(await res.arrayBuffer())
    const sh = await fetch(stack.shieldUrl + path, { headers: { 'x-vcdn-tier': TIER_SECRET } })
    await sh.arrayBuffer()
    const edge = stack.edgeStatus(res.headers)
    const shield = stack.shieldStatus(sh.headers)
    last = `edge ${res.status} ${edge} (${body.length} B), shield ${sh.status} ${shield}`
    if (res.status === 200 && body.length === expectBytes && edge === 'HIT' && shield === 'HIT') return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${stack.kind}: ${path} not cached at both tiers after 20 attempts: ${last}`)
}
