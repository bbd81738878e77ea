// The delayed origin of miss-storm, run as its own process (spawned by lib/delayed-origin.ts) so
// its timers and writes never share an event loop with the clients that measure. Plain node:http
// on 127.0.0.1, port 0; prints one line `{"port":N}` on stdout once listening; exits when its
// stdin closes (the parent went away) or on SIGTERM.
//   PUT /__bench/object?path=P&delayMs=D   body = the object, header x-bench-headers = JSON map
//   GET /__bench/count?path=P              → how many requests for P arrived (control requests excluded)
//   GET P                                  → the object after D ms (Content-Length, one write)
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'

interface OriginObject {
  body: Buffer
  headers: Record<string, string>
  delayMs: number
}

const MAX_DELAY_MS = 60_000
const objects = new Map<string, OriginObject>()
const counts = new Map<string, number>()

function control(req: IncomingMessage, res: ServerResponse, url: URL): void {
  const path = url.searchParams.get('path') ?? ''
  if (url.pathname === '/__bench/count' && req.method === 'GET') {
    res.end(String(counts.get(path) ?? 0))
    return
  }
  if (url.pathname === '/__bench/object' && req.method === 'PUT' && path.startsWith('/')) {
    const delayMs = Number(url.searchParams.get('delayMs') ?? '0')
    let headers: Record<string, string>
    try {
      headers = JSON.parse(String(req.headers['x-bench-headers'] ?? '{}')) as Record<string, string>
    } catch {
      res.writeHead(400).end('x-bench-headers is not JSON')
      return
    }
    if (!Number.isFinite(delayMs) || delayMs < 0 || delayMs > MAX_DELAY_MS) {
      res.writeHead(400).end('bad delayMs')
      return
    }
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      objects.set(path, { body: Buffer.concat(chunks), headers, delayMs })
      res.writeHead(204).end()
    })
    return
  }
  res.writeHead(404).end()
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://origin')
  if (url.pathname.startsWith('/__bench/')) {
    control(req, res, url)
    return
  }
  counts.set(url.pathname, (counts.get(url.pathname) ?? 0) + 1)
  const obj = objects.get(url.pathname)
  if (obj === undefined) {
    res.writeHead(404, { 'content-length': '0' }).end()
    return
  }
  const send = (): void => {
    if (res.destroyed) return
    res.writeHead(200, { ...obj.headers, 'content-length': String(obj.body.length) })
    res.end(req.method === 'HEAD' ? undefined : obj.body)
  }
  if (obj.delayMs > 0) setTimeout(send, obj.delayMs)
  else send()
})
// Many simultaneous connections in the storm: keep the accept queue deep enough for all of them.
server.listen({ host: '127.0.0.1', port: 0, backlog: 1024 }, () => {
  const addr = server.address()
  process.stdout.write(`${JSON.stringify({ port: typeof addr === 'object' && addr !== null ? addr.port : 0 })}\n`)
})
process.stdin.on('end', () => process.exit(0))
process.stdin.on('error', () => process.exit(0))
process.stdin.resume()
process.on('SIGTERM', () => process.exit(0))
