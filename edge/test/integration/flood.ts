// An HTTP/1.1 load driver for resource tests: `connections` keep-alive sockets, each with up to
// `depth` requests in flight (depth > 1 pipelines; default 1), answers parsed by Content-Length
// (loopback only). Bounded by count and by a deadline.
import { connect, type Socket } from 'node:net'

export interface FloodResult {
  sent: number
  answered: number
  byStatus: Map<number, number>
  ms: number
}

export async function flood(opts: {
  port: number
  count: number
  path: (i: number) => string
  connections?: number
  depth?: number
  deadlineMs: number
}): Promise<FloodResult> {
  const connections = opts.connections ?? 16
  const depth = opts.depth ?? 1
  const started = Date.now()
  let next = 0
  let answered = 0
  const byStatus = new Map<number, number>()
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const sock: Socket = connect(opts.port, '127.0.0.1')
      let inFlight = 0
      let buf: Buffer = Buffer.alloc(0)
      const timer = setTimeout(() => {
        sock.destroy()
        reject(new Error(`flood deadline: ${answered} of ${opts.count} answered`))
      }, opts.deadlineMs)
      const pump = (): void => {
        let out = ''
        while (inFlight < depth && next < opts.count) {
          out += `GET ${opts.path(next++)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`
          inFlight++
        }
        if (out !== '') sock.write(out)
        if (inFlight === 0) {
          clearTimeout(timer)
          sock.end()
          resolve()
        }
      }
      sock.on('connect', pump)
      sock.on('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
      sock.on('data', (d: Buffer) => {
        buf = buf.length === 0 ? d : Buffer.concat([buf, d])
        for (;;) {
          const end = buf.indexOf('\r\n\r\n')
          if (end < 0) break
          const head = buf.toString('latin1', 0, end)
          const m = /\r\ncontent-length: *(\d+)/i.exec(head)
          const len = m === null ? 0 : Number(m[1])
          if (buf.length < end + 4 + len) break
          const status = Number(head.slice(9, 12))
          byStatus.set(status, (byStatus.get(status) ?? 0) + 1)
          buf = buf.subarray(end + 4 + len)
          answered++
          inFlight--
        }
        pump()
      })
    })
  await Promise.all(Array.from({ length: connections }, one))
  return { sent: next, answered, byStatus, ms: Date.now() - started }
}

/** Resident set size of a process in bytes (Linux /proc). */
export async function rssBytes(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises')
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = /VmRSS:\s+(\d+) kB/.exec(status)
  if (m === null) throw new Error(`no VmRSS for ${pid}`)
  return Number(m[1]) * 1024
}
