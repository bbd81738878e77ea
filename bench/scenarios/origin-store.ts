// origin-store: the origin content server (docs/architecture.md §7.1) serving 2 MB segments from
// the disk store vs from the S3 store, side by side. Two `vcdn origin` processes over the same
// `--segments` distinct 2 MB segments (default 64): one with `store.kind = "fs"`, one with
// `store.kind = "s3"` against a real SeaweedFS on loopback started here. `--clients` keep-alive
// connections (default 16) GET the segments in turn with the tier secret, as shields do, through
// the raw byte-counting client (lib/stream-load.ts; autocannon would cap both near 50 MB/s), so
// concurrent requests ask for distinct objects. Runs alternate fs, s3, fs, s3, …; the figure is
// bytes/s, with each origin's CPU and SeaweedFS's.
//
// Pinning (when on): the origin under test on the edge core, like the edge in the other scenarios;
// SeaweedFS and this process (the client) on the other cores.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { FsStore, S3Store } from '../../shared/store/index.js'
import { startS3Server, startTier, type S3Server, type TierProcess } from '../../shared/testing/index.js'
import { pinEdge, pinOther } from '../lib/pin.js'
import { fmtBytes, ratio, type RunContext, type ScenarioResult } from '../lib/report.js'
import { TIER_SECRET } from '../lib/stacks.js'
import { streamLoad, type StreamLoadResult } from '../lib/stream-load.js'
import { cpuSeconds, median, round } from '../lib/util.js'
import { SEGMENT_BYTES, segmentBody } from './content.js'

const BUCKET = 'vcdn-bench'
const QUIET = { accessLog: false, logLevel: 'warn' }

type StoreKind = 'fs' | 's3'

interface OriginUnderTest {
  kind: StoreKind
  origin: TierProcess
}

export interface StoreRun extends StreamLoadResult {
  store: StoreKind
  /** CPU the origin used during the run, in % of one core. */
  originCpuPct: number
  /** CPU SeaweedFS used during the run, in % of one core (the s3 origin's store server). */
  weedCpuPct: number
}

const segmentPath = (i: number): string => `/v/bench/720p/seg_${String(i).padStart(5, '0')}.m4s`
const pidOf = (o: { proc: { pid?: number | undefined } }): number[] => (o.proc.pid === undefined ? [] : [o.proc.pid])

async function load(
  o: OriginUnderTest,
  weed: S3Server,
  paths: readonly string[],
  clients: number,
  durationS: number,
): Promise<StoreRun> {
  pinEdge(pidOf(o.origin))
  const cpu = (): [number, number] => [
    pidOf(o.origin).reduce((s, p) => s + cpuSeconds(p), 0),
    pidOf(weed).reduce((s, p) => s + cpuSeconds(p), 0),
  ]
  const [origin0, weed0] = cpu()
  const t0 = performance.now()
  const r = await streamLoad({
    port: o.origin.port,
    path: paths[0] as string,
    paths,
    connections: clients,
    durationS,
    headers: { 'x-vcdn-tier': TIER_SECRET },
  })
  const wallS = (performance.now() - t0) / 1000
  const [origin1, weed1] = cpu()
  return {
    store: o.kind,
    ...r,
    latencyP50Ms: round(r.latencyP50Ms, 1),
    latencyP99Ms: round(r.latencyP99Ms, 1),
    originCpuPct: round(((origin1 - origin0) / wallS) * 100),
    weedCpuPct: round(((weed1 - weed0) / wallS) * 100),
  }
}

/** One GET per store before any load: the right bytes, whole, from both origins. */
async function checkServes(o: OriginUnderTest, path: string, body: Buffer): Promise<void> {
  const res = await fetch(o.origin.url + path, { headers: { 'x-vcdn-tier': TIER_SECRET } })
  const got = Buffer.from(await res.arrayBuffer())
  if (res.status !== 200 || !got.equals(body))
    throw new Error(`origin over ${o.kind}: ${path} answered ${res.status} with ${got.length} bytes, not the segment`)
}

export async function originStoreScenario(ctx: RunContext): Promise<ScenarioResult> {
  const dir = join(ctx.dir, 'origin-store')
  mkdirSync(dir, { recursive: true })
  const segments = ctx.segments
  const clients = ctx.clients
  const paths = Array.from({ length: segments }, (_, i) => segmentPath(i + 1))
  const weed = await startS3Server()
  const origins: OriginUnderTest[] = []
  const runs: StoreRun[] = []
  const s3 = {
    endpoint: weed.endpoint,
    region: weed.region,
    bucket: BUCKET,
    accessKeyId: weed.accessKeyId,
    secretAccessKey: weed.secretAccessKey,
  }
  const s3Store = new S3Store({ ...s3, forcePathStyle: true })
  try {
    pinOther(pidOf(weed))
    await s3Store.ensureBucket()
    const fsDir = join(dir, 'store')
    const fsStore = new FsStore({ dir: fsDir })
    for (const [i, path] of paths.entries()) {
      const body = segmentBody(SEGMENT_BYTES, i + 1)
      await fsStore.put(path.slice(1), body)
      await s3Store.put(path.slice(1), body)
    }
    for (const [kind, store] of [
      ['fs', { kind: 'fs', dir: fsDir }],
      ['s3', { kind: 's3', s3 }],
    ] as const) {
      const originDir = join(dir, `origin-${kind}`)
      mkdirSync(originDir, { recursive: true })
      const origin = await startTier(
        'origin',
        { tierSecret: TIER_SECRET, dataDir: join(originDir, 'data'), store, ...QUIET },
        { dir: originDir, timeoutMs: 60_000 },
      )
      origins.push({ kind, origin })
      pinEdge(pidOf(origin))
    }
    const last = paths.length
    for (const o of origins) await checkServes(o, paths[last - 1] as string, segmentBody(SEGMENT_BYTES, last))
    for (const o of origins) await load(o, weed, paths, clients, ctx.warmupS)
    for (let i = 0; i < ctx.runs; i++)
      for (const o of origins) runs.push(await load(o, weed, paths, clients, ctx.durationS))
  } finally {
    s3Store.close()
    await Promise.allSettled(origins.map((o) => o.origin.stop()))
    await weed.stop()
  }
  const of = (kind: StoreKind, f: (r: StoreRun) => number): number =>
    median(runs.filter((r) => r.store === kind).map(f))
  const fs = of('fs', (r) => r.bytesPerSec)
  const s3Bps = of('s3', (r) => r.bytesPerSec)
  const failures = runs.reduce((n, r) => n + r.non2xx + r.errors, 0)
  // Bytes per CPU-second of what serves them (fs: the origin, the kernel's reads included in its
  // system time; s3: the origin and SeaweedFS): on a shared machine, where neither may get a whole
  // core, the comparison of the two serving paths' cost.
  const perCpuS = (r: StoreRun): number => {
    const cpuPct = r.originCpuPct + (r.store === 's3' ? r.weedCpuPct : 0)
    return cpuPct > 0 ? r.bytesPerSec / (cpuPct / 100) : 0
  }
  const fsPerCpuS = of('fs', perCpuS)
  const s3PerCpuS = of('s3', perCpuS)
  const line =
    `origin-store  ${clients} clients × distinct 2 MB segments (${segments})  ` +
    `fs ${fmtBytes(fs)}/s p99 ${of('fs', (r) => r.latencyP99Ms)} ms  s3 ${fmtBytes(s3Bps)}/s p99 ${of('s3', (r) => r.latencyP99Ms)} ms  ` +
    `s3/fs ${ratio(s3Bps, fs).toFixed(2)}×  median of ${ctx.runs}` +
    `  [per CPU-second of origin (+ SeaweedFS): fs ${fmtBytes(fsPerCpuS)} s3 ${fmtBytes(s3PerCpuS)} (${ratio(s3PerCpuS, fsPerCpuS).toFixed(2)}×);` +
    ` raw client; cpu% origin: fs ${of('fs', (r) => r.originCpuPct)} s3 ${of('s3', (r) => r.originCpuPct)}, SeaweedFS ${of('s3', (r) => r.weedCpuPct)}]` +
    (failures > 0 ? `  WARNING: ${failures} errors` : '')
  return {
    scenario: 'origin-store',
    line,
    summary: {
      clients,
      segments,
      objectBytes: SEGMENT_BYTES,
      fsBytesPerSec: fs,
      s3BytesPerSec: s3Bps,
      s3ToFs: ratio(s3Bps, fs),
      fsBytesPerCpuS: Math.round(fsPerCpuS),
      s3BytesPerCpuS: Math.round(s3PerCpuS),
      s3ToFsPerCpuS: ratio(s3PerCpuS, fsPerCpuS),
      fsReqPerSec: of('fs', (r) => r.reqPerSec),
      s3ReqPerSec: of('s3', (r) => r.reqPerSec),
      fsLatencyP50Ms: of('fs', (r) => r.latencyP50Ms),
      fsLatencyP99Ms: of('fs', (r) => r.latencyP99Ms),
      s3LatencyP50Ms: of('s3', (r) => r.latencyP50Ms),
      s3LatencyP99Ms: of('s3', (r) => r.latencyP99Ms),
      fsOriginCpuPct: of('fs', (r) => r.originCpuPct),
      s3OriginCpuPct: of('s3', (r) => r.originCpuPct),
      s3WeedCpuPct: of('s3', (r) => r.weedCpuPct),
      failures,
    },
    target: 'none: a side-by-side measurement (the issue asks for the figures, not a threshold)',
    isPass: failures === 0,
    runs,
    notes: [
      'every segment is in the page cache for both (just written): this is the serving path, not the disk',
      'SeaweedFS runs master, volume, filer and S3 gateway in one process (shared/testing/s3-server.ts)',
    ],
  }
}
