// Small helpers of the benchmarks: free ports, statistics, /proc readings of processes (and their
// threads) we started.
import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'

/** A port that was free a moment ago on 127.0.0.1 (for configs that need the number up front: nginx). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer()
    srv.once('error', rej)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      srv.close(() => res(port))
    })
  })
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)))
  return s[rank - 1] as number
}

export function round(x: number, digits = 0): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

/** VmRSS of a process in bytes (0 when it is gone). */
export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : 0
  } catch {
    return 0
  }
}

// USER_HZ: 100 on every Linux we run on (sysconf(_SC_CLK_TCK)); /proc/<pid>/stat counts in it.
const CLOCK_TICKS_PER_S = 100

/** CPU seconds (user + system) a process has used so far, all its threads included. */
export function cpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/stat`)
}

/**
 * CPU seconds (user + system) each thread of a process has used so far, by thread id (the main
 * thread's id is the pid). Empty when the process is gone.
 */
export function threadCpuSeconds(pid: number): Map<number, number> {
  const out = new Map<number, number>()
  let tids: string[]
  try {
    tids = readdirSync(`/proc/${pid}/task`)
  } catch {
    return out
  }
  // A thread that ended between the listing and its read counts 0 (its time is lost to both reads).
  for (const tid of tids) out.set(Number(tid), statCpuSeconds(`/proc/${pid}/task/${tid}/stat`))
  return out
}

function statCpuSeconds(file: string): number {
  try {
    const stat = readFileSync(file, 'utf8')
    // Fields after the ")" that closes the command name; utime and stime are fields 14 and 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(rest[11]) + Number(rest[12])) / CLOCK_TICKS_PER_S
  } catch {
    return 0
  }
}

/** Direct children of a process (nginx master → its worker). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number)
  } catch {
    return []
  }
}
