// What the PROXY v1 front end costs (shared/http proxy-v1.ts, docs/architecture.md §3): hits of
// one HttpServer served directly and through its v1 listener, side by side in one run (alternating,
// median of the runs). A child process serves (HttpServer + ProxyV1Listener, one core as a tier);
// this process is the client: `connections` keep-alive connections, each sending its v1 line once,
// then GETs back to back, for `durationS` per load.
//
//   node dist/bench/proxy-v1.js [--runs 3] [--duration 5] [--connections 16]
import { fork } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { HttpServer, ProxyV1Listener, TrustedProxies, frontEndAddress } from '../shared/http/index.js'

const SIZES = { '2MB': 2 * 1024 * 1024, '1KB': 1024 } as const
type Size = keyof typeof SIZES

async function serve(): Promise<void> {
  const bodies = new Map<string, Buffer>(
    Object.entries(SIZES).map(([name, bytes]) => [`/${name}`, Buffer.alloc(bytes, 0x61)]),
  )
  const localAddress = frontEndAddress()
  const server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    proxyFrontEnd: localAddress,
    handler: (req, res) => {
      const body = bodies.get(req.path) ?? Buffer.alloc(0)
      res.start(200, { 'content-type': 'application/octet-stream' }, body.length)
      res.end(body)
    },
  })
  const port = await server.listen()
  const v1 = new ProxyV1Listener({
    host: '127.0.0.1',
    port: 0,
    proxies: new TrustedProxies(['127.0.0.0/8']),
    target: { host: '127.0.0.1', port },
    localAddress,
    log: { info: () => {}, warn: () => {}, error: () => {} },
  })
  process.send?.({ port, v1Port: await v1.listen() })
}

/** Responses and body bytes one connection got in `durationMs` of back-to-back GETs of `path`. */
function load(port: number, path: string, isV1: boolean, durationMs: number): Promise<{ n: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1')
    const request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: bench\r\n\r\n`)
    const endMs = Date.now() + durationMs
    let n = 0
    let bytes = 0
    let need = -1
    let head = Buffer.alloc(0)
    socket.on('error', reject)
    socket.on('connect', () => {
      socket.write(isV1 ? Buffer.concat([Buffer.from('PROXY TCP4 203.0.113.7 127.0.0.1 1 80\r\n'), request]) : request)
    })
    socket.on('data', (chunk: Buffer) => {
      let data = chunk
      while (data.length > 0) {
        if (need < 0) {
          head = Buffer.concat([head, data])
          const end = head.indexOf('\r\n\r\n')
          if (end === -1) return
          need = Number(/content-length: (\d+)/i.exec(head.toString('latin1', 0, end))?.[1] ?? 0)
          data = head.subarray(end + 4)
          head = Buffer.alloc(0)
        }
        const taken = Math.min(need, data.length)
        need -= taken
        bytes += taken
        data = data.subarray(taken)
        if (need === 0) {
          need = -1
          n++
          if (Date.now() >= endMs) {
            socket.destroy()
            resolve({ n, bytes })
            return
          }
          socket.write(request)
        }
      }
    })
  })
}

async function main(): Promise<void> {
  const arg = (name: string, fallback: number): number => {
    const i = process.argv.indexOf(`--${name}`)
    return i === -1 ? fallback : Number(process.argv[i + 1])
  }
  const runs = arg('runs', 3)
  const durationMs = arg('duration', 5) * 1000
  const connections = arg('connections', 16)
  const child = fork(fileURLToPath(import.meta.url), ['--serve'])
  const ports = await new Promise<{ port: number; v1Port: number }>((resolve) => child.once('message', resolve))
  const results = new Map<string, number[]>()
  try {
    for (let run = 0; run < runs; run++) {
      for (const size of Object.keys(SIZES) as Size[]) {
        for (const isV1 of run % 2 === 0 ? [false, true] : [true, false]) {
          const startMs = Date.now()
          const all = await Promise.all(
            Array.from({ length: connections }, () =>
              load(isV1 ? ports.v1Port : ports.port, `/${size}`, isV1, durationMs),
            ),
          )
          const seconds = (Date.now() - startMs) / 1000
          const n = all.reduce((sum, r) => sum + r.n, 0)
          const bytes = all.reduce((sum, r) => sum + r.bytes, 0)
          const key = `${size} ${isV1 ? 'v1' : 'direct'}`
          const value = size === '2MB' ? (bytes * 8) / seconds / 1e9 : n / seconds
          results.set(key, [...(results.get(key) ?? []), value])
        }
      }
    }
  } finally {
    child.kill()
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0
  for (const size of Object.keys(SIZES) as Size[]) {
    const direct = median(results.get(`${size} direct`) ?? [])
    const v1 = median(results.get(`${size} v1`) ?? [])
    const unit = size === '2MB' ? 'Gbit/s' : 'req/s'
    const shown = (x: number): string => (size === '2MB' ? x.toFixed(2) : x.toFixed(0))
    process.stdout.write(
      `${size} hits: direct ${shown(direct)} ${unit}, through v1 ${shown(v1)} ${unit}: ${(v1 / direct).toFixed(2)}x ` +
        `(runs: direct ${(results.get(`${size} direct`) ?? []).map(shown).join(' ')}; v1 ${(results.get(`${size} v1`) ?? []).map(shown).join(' ')})\n`,
    )
  }
}

if (process.argv.includes('--serve')) await serve()
else await main()
