// The server-bound segment load: lib/trunc-client.py (keep-alive GETs whose bodies the kernel
// discards with MSG_TRUNC, never copied to user space), pinned like wrk. With wrk on one core of a
// 2-core machine, a 2 MB load measures how fast wrk can copy bytes in (it saturates first, for
// either server); this client costs almost nothing per byte, so the edge's core is the limit and
// the figure compares the two servers.
import { join } from 'node:path'
import { ROOT } from '../../shared/testing/index.js'
import { runLoadChild, type ChildLoadOptions, type ChildLoadResult } from './load-child.js'
import { headerLines } from './player-headers.js'

const CLIENT = join(ROOT, 'bench', 'lib', 'trunc-client.py')

/** Many objects instead of one: each request's path drawn from a file, seeded. */
export interface TruncPaths {
  /** One client path a line (already signed); line 1 is rank 1 of the Zipf draw. */
  file: string
  /** Zipf exponent s (P(rank k) ∝ 1/k^s); 0 draws uniformly. */
  zipf: number
  /** Seed of the client's random draw (the same sequence for every stack). */
  seed: number
}

export async function runTrunc(o: ChildLoadOptions & { paths?: TruncPaths }): Promise<ChildLoadResult> {
  const url = new URL(o.url)
  const draw =
    o.paths === undefined
      ? []
      : ['--paths', o.paths.file, '--zipf', String(o.paths.zipf), '--seed', String(o.paths.seed)]
  const args = [
    CLIENT,
    ...draw,
    url.hostname,
    url.port,
    url.pathname,
    String(o.connections),
    String(o.durationS),
    ...headerLines(o.headers),
  ]
  const { report, cpuPct } = await runLoadChild({
    bin: 'python3',
    args,
    durationS: o.durationS,
    marker: 'TRUNC_JSON',
    hint: 'python3 is part of every machine here',
    ...(o.env !== undefined ? { env: o.env } : {}),
    ...(o.cpus !== undefined ? { cpus: o.cpus } : {}),
  })
  const n = (k: string): number => report[k] ?? 0
  const wallS = n('durationS')
  return {
    requests: n('requests'),
    bytes: n('bytes'),
    reqPerSec: Math.round(n('requests') / wallS),
    bytesPerSec: Math.round(n('bytes') / wallS),
    latencyP50Ms: n('p50Ms'),
    latencyP99Ms: n('p99Ms'),
    non2xx: n('non2xx'),
    errors: n('errors'),
    cpuPct,
  }
}
