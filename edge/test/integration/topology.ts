// A delivery topology for integration tests: a real `vcdn origin` over a disk store (or a
// scripted stand-in for fault tests), N `vcdn shield`s and one `vcdn edge`, all on 127.0.0.1.
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { FsStore } from '../../../shared/store/index.js'
import { freePort, seededBytes, startTier, tempDir, waitFor, type TierProcess } from '../../../shared/testing/index.js'
import { signedPath } from '../../../shared/token/index.js'

export const SECRET = 'tier-secret-for-tests-0123456789abcdef'
export const KEYS = {
  k1: 'signing-key-one-for-tests-0123456789abcdef',
  k2: 'signing-key-two-for-tests-0123456789abcdef',
}

export interface Topology {
  dir: string
  store: FsStore
  origin: TierProcess | null
  originUrl: string
  shields: TierProcess[]
  edge: TierProcess
  sign(path: string, opts?: { prefix?: string; ttlS?: number; ip?: string; kid?: string }): string
  startShield(i: number): Promise<TierProcess>
  startEdge(extra?: Record<string, unknown>): Promise<TierProcess>
  close(): Promise<void>
}

export interface TopologyOptions {
  shields?: number
  /** Upstream for the shields instead of a real origin (ScriptedOrigin url). */
  originUrl?: string
  shieldCache?: Record<string, unknown>
  edgeCache?: Record<string, unknown>
  edge?: Record<string, unknown>
  shieldExtra?: Record<string, unknown>
}

export async function topology(opts: TopologyOptions = {}): Promise<Topology> {
  const tmp = tempDir('vcdn-topo-')
  const dir = tmp.dir
  const store = new FsStore({ dir: join(dir, 'store') })
  let origin: TierProcess | null = null
  let originUrl = opts.originUrl
  if (originUrl === undefined) {
    origin = await startTier(
      'origin',
      {
        tierSecret: SECRET,
        dataDir: join(dir, 'origin'),
        store: { kind: 'fs', dir: join(dir, 'store') },
        accessLog: false,
      },
      { dir },
    )
    originUrl = origin.url
  }
  const shieldPorts: number[] = []
  const shields: TierProcess[] = []
  const shieldConfig = (i: number): Record<string, unknown> => ({
    tierSecret: SECRET,
    listen: { host: '127.0.0.1', port: shieldPorts[i] ?? 0 },
    upstreams: [originUrl],
    cache: {
      dir: join(dir, `shield${i}`),
      maxBytes: 256 * 1024 * 1024,
      memoryMaxBytes: 32 * 1024 * 1024,
      ...opts.shieldCache,
    },
    accessLog: false,
    // Delivery tests count the origin's requests: no registration traffic (its tests are the origin's).
    register: { isEnabled: false },
    ...opts.shieldExtra,
  })
  const startShield = async (i: number): Promise<TierProcess> => {
    shieldPorts[i] ??= await freePort()
    const s = await startTier('shield', shieldConfig(i), { dir })
    shieldPorts[i] = s.port
    shields[i] = s
    return s
  }
  // A tier that fails to start stops those already running: left running, they kept the test
  // process alive until its file timeout.
  const stopBegun = async (): Promise<void> => {
    await Promise.all([...shields.map((s) => s.stop()), origin?.stop()])
    tmp.remove()
  }
  try {
    for (let i = 0; i < (opts.shields ?? 1); i++) await startShield(i)
  } catch (err) {
    await stopBegun()
    throw err
  }
  const edgePort = await freePort()
  const edgeConfig = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    tierSecret: SECRET,
    listen: { host: '127.0.0.1', port: edgePort },
    shields: shields.map((s) => s.url),
    origin: originUrl,
    signingKeys: KEYS,
    cache: { dir: join(dir, 'edge'), maxBytes: 256 * 1024 * 1024, memoryMaxBytes: 32 * 1024 * 1024, ...opts.edgeCache },
    accessLog: false,
    register: { isEnabled: false },
    ...opts.edge,
    ...extra,
  })
  let edge: TierProcess
  try {
    edge = await startTier('edge', edgeConfig(), { dir })
  } catch (err) {
    await stopBegun()
    throw err
  }
  const topo: Topology = {
    dir,
    store,
    origin,
    originUrl,
    shields,
    edge,
    sign(path, o = {}) {
      const prefix = o.prefix ?? path.slice(0, path.indexOf('/', 3) + 1)
      return signedPath({
        prefix,
        path,
        ttlS: o.ttlS ?? 3600,
        kid: o.kid ?? 'k1',
        keys: KEYS,
        nowMs: Date.now(),
        ...(o.ip !== undefined ? { ip: o.ip } : {}),
      })
    },
    startShield,
    async startEdge(extra) {
      topo.edge = await startTier('edge', edgeConfig(extra), { dir })
      return topo.edge
    },
    async close() {
      await Promise.all([topo.edge.stop(), ...shields.map((s) => s.stop()), origin?.stop()])
      tmp.remove()
    },
  }
  return topo
}

/** Deterministic filler bodies, one per seed (shared/testing). */
export { seededBytes as randomBytes }

/**
 * GET until the tier answers HIT. A client can have the last byte a moment before the fill is
 * committed to the cache (as with nginx), so tests that need the object stored wait for it.
 */
export async function warm(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return waitFor(
    async () => {
      const r = await fetch(url, { headers })
      await r.arrayBuffer()
      return r.headers.get('x-cache') === 'HIT' ? r : null
    },
    { what: `a HIT for ${url.slice(0, 80)}` },
  )
}

/** Every file below `dir` with its size (a file evicted between listing and stat is skipped). */
export function filesUnder(dir: string): { path: string; size: number }[] {
  const out: { path: string; size: number }[] = []
  const walk = (d: string): void => {
    let names: string[]
    try {
      names = readdirSync(d)
    } catch {
      return
    }
    for (const n of names) {
      const p = join(d, n)
      let s
      try {
        s = statSync(p)
      } catch {
        continue
      }
      if (s.isDirectory()) walk(p)
      else out.push({ path: p, size: s.size })
    }
  }
  walk(dir)
  return out
}

export function bytesUnder(dir: string): number {
  return filesUnder(dir).reduce((n, f) => n + f.size, 0)
}
