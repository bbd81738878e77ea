// A minimal HTTP/1.1 keep-alive GET loop for large bodies. autocannon parses and buffers every
// body and tops out near 50 MB/s on 2 MB responses here (measured), which would cap both stacks at
// the client's limit; this client reads the response head, then only counts body bytes. One
// request in flight per connection (pipelining 1), Content-Length framing only. With `paths`, the
// requests take them in turn (one shared counter), so concurrent requests ask for distinct objects.
import { connect, type Socket } from 'node:net'
import { headerLines } from './player-headers.js'
import { percentile } from './util.js'

const READ_BUFFER_BYTES = 256 * 1024

export interface StreamLoadOptions {
  port: number
  path: string
  /** Ask for these in turn instead of `path` alone. */
  paths?: readonly string[]
  connections: number
  durationS: number
  /** Request headers besides Host. */
  headers: Readonly<Record<string, string>>
}

export interface StreamLoadResult {
  requests: number
  /** Head + body bytes received within the window. */
  bytes: number
  bytesPerSec: number
  reqPerSec: number
  latencyP50Ms: number
  latencyP99Ms: number
  non2xx: number
  errors: number
}

export function streamLoad(o: StreamLoadOptions): Promise<StreamLoadResult> {
  const extra = headerLines(o.headers)
    .map((line) => `${line}\r\n`)
    .join('')
  const requestBuffers = (o.paths ?? [o.path]).map((path) =>
    Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${o.port}\r\n${extra}\r\n`, 'latin1'),
  )
  let nextRequest = 0
  const latencies: number[] = []
  let requests = 0
  let bytes = 0
  let non2xx = 0
  let errors = 0
  let isOver = false
  const sockets = new Set<Socket>()

  const open = (): void => {
    if (isOver) return
    // onread with a buffer of its own: libuv reads into it again and again, no allocation per chunk.
    const readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES)
    const sock: Socket = connect({
      port: o.port,
      host: '127.0.0.1',
      onread: {
        buffer: readBuffer,
        callback: (n: number) => {
          onData(readBuffer.subarray(0, n))
          return true
        },
      },
    })
    sockets.add(sock)
    sock.setNoDelay(true)
    let head: Buffer | null = Buffer.alloc(0) // non-null while reading a response head
    let remaining = 0
    let startNs = 0n
    const send = (): void => {
      if (isOver) return
      head = Buffer.alloc(0)
      startNs = process.hrtime.bigint()
      sock.write(requestBuffers[nextRequest++ % requestBuffers.length] as Buffer)
    }
    const fail = (): void => {
      errors++
      sock.destroy()
    }
    sock.on('connect', send)
    const onData = (chunk: Buffer): void => {
      if (isOver) return
      bytes += chunk.length
      let body = chunk
      if (head !== null) {
        const buf: Buffer = head.length === 0 ? chunk : Buffer.concat([head, chunk])
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) {
          if (buf.length > 64 * 1024) return fail()
          head = Buffer.from(buf) // a copy: the read buffer is reused
          return
        }
        const text = buf.subarray(0, end).toString('latin1')
        const status = Number(text.slice(9, 12))
        const len = /\r\ncontent-length:\s*(\d+)/i.exec(text)
        if (!len) return fail() // chunked or close-delimited: not what a cache hit answers
        if (status < 200 || status > 299) non2xx++
        remaining = Number(len[1])
        head = null
        body = buf.subarray(end + 4)
      }
      remaining -= body.length
      if (remaining < 0) return fail() // more than one response in flight: impossible at pipelining 1
      if (remaining === 0) {
        requests++
        latencies.push(Number(process.hrtime.bigint() - startNs) / 1e6)
        send()
      }
    }
    sock.on('error', () => {
      if (!isOver) errors++
    })
    sock.on('close', () => {
      sockets.delete(sock)
      if (!isOver) open() // the server closed a keep-alive connection: reconnect
    })
  }

  return new Promise((res) => {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < o.connections; i++) open()
    setTimeout(() => {
      isOver = true
      const wallS = Number(process.hrtime.bigint() - t0) / 1e9
      for (const s of sockets) s.destroy()
      res({
        requests,
        bytes,
        bytesPerSec: Math.round(bytes / wallS),
        reqPerSec: Math.round(requests / wallS),
        latencyP50Ms: percentile(latencies, 50),
        latencyP99Ms: percentile(latencies, 99),
        non2xx,
        errors,
      })
    }, o.durationS * 1000)
  })
}
