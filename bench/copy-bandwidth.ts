// How much memory bandwidth 2 MB hits can have on this machine (bench/README.md "From 2 cores to
// 16–64"): a vcdn hit copies its body from the memory tier into socket buffers, so a core serving
// 2 MB hits is a memcpy loop over a working set larger than the CPU cache. This measures that loop
// alone, with 1 and with 2 threads at once: if 2 threads copy much less than twice what 1 does,
// memory bandwidth (not the server) bounds what a second worker adds to 2 MB hits.
// Each thread copies random 2 MiB slices of a 400 MiB pool (200 segments, like large-hit) into a
// 2 MiB buffer of its own, for `durationS`; the pool is a SharedArrayBuffer (as the memory tier's
// bodies with workers) or a plain ArrayBuffer per thread (as with one thread). Runs alternate;
// the medians are printed.
//
//   node dist/bench/copy-bandwidth.js [--runs 5] [--duration 3]
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { fileURLToPath } from 'node:url'

const SEGMENT = 2 * 1024 * 1024
const SEGMENTS = 200

interface Job {
  pool: SharedArrayBuffer | null
  durationMs: number
  startAt: number
}

function copyLoop(job: Job): number {
  const pool = new Uint8Array(job.pool ?? new ArrayBuffer(SEGMENT * SEGMENTS))
  if (job.pool === null) pool.fill(0x61)
  const dst = new Uint8Array(SEGMENT)
  let x = 12345
  while (Date.now() < job.startAt) {
    // all threads start together
  }
  const end = job.startAt + job.durationMs
  let bytes = 0
  while (Date.now() < end) {
    for (let i = 0; i < 16; i++) {
      x = (x * 1103515245 + 12345) >>> 0
      const k = x % SEGMENTS
      dst.set(pool.subarray(k * SEGMENT, (k + 1) * SEGMENT))
      bytes += SEGMENT
    }
  }
  return bytes / job.durationMs / 1e6 // GB/s
}

async function run(threads: number, isShared: boolean, durationMs: number): Promise<number> {
  const pool = isShared ? new SharedArrayBuffer(SEGMENT * SEGMENTS) : null
  if (pool !== null) new Uint8Array(pool).fill(0x61)
  const startAt = Date.now() + 500
  const rates = await Promise.all(
    Array.from(
      { length: threads },
      () =>
        new Promise<number>((resolve, reject) => {
          const w = new Worker(fileURLToPath(import.meta.url), { workerData: { pool, durationMs, startAt } })
          w.once('message', (gbs: number) => resolve(gbs))
          w.once('error', reject)
        }),
    ),
  )
  return rates.reduce((a, b) => a + b, 0)
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? 0
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name)
  const v = i < 0 ? NaN : Number(process.argv[i + 1])
  return Number.isFinite(v) && v > 0 ? v : fallback
}

if (!isMainThread) {
  parentPort?.postMessage(copyLoop(workerData as Job))
} else {
  const runs = arg('--runs', 5)
  const durationMs = arg('--duration', 3) * 1000
  const configs = [
    { name: '1 thread, plain', threads: 1, isShared: false },
    { name: '1 thread, shared', threads: 1, isShared: true },
    { name: '2 threads, shared', threads: 2, isShared: true },
    { name: '2 threads, plain', threads: 2, isShared: false },
  ]
  const results = new Map<string, number[]>(configs.map((c) => [c.name, []]))
  for (let r = 0; r < runs; r++) {
    for (const c of configs) results.get(c.name)?.push(await run(c.threads, c.isShared, durationMs))
  }
  const one = median(results.get('1 thread, shared') ?? [])
  for (const c of configs) {
    const m = median(results.get(c.name) ?? [])
    const all = (results.get(c.name) ?? []).map((g) => g.toFixed(1)).join(' ')
    console.log(
      `${c.name.padEnd(18)} ${m.toFixed(2)} GB/s copied (runs: ${all}); ÷ 1 thread shared ${(m / one).toFixed(2)}×`,
    )
  }
}
