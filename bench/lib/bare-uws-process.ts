// large-hit's ceiling: a bare uWebSockets.js server, as its own process, serving large-hit's
// segments from a Map of Buffers by path with Content-Length and nothing else (no token check, no
// cache, no metrics). A body goes out as uWS's own examples stream one: tryEnd, then the unsent
// tail from onWritable straight from the Buffer, never copied into uWS's buffer. Listens on
// 127.0.0.1, port 0; prints one line `{"port":N}` once listening; exits when its stdin closes (the
// parent went away) or on SIGTERM.
//   node bare-uws-process.js <segments>
import uWS from 'uWebSockets.js'
import { largeSegmentPath, SEGMENT_BYTES, segmentBody } from '../scenarios/content.js'

const count = Number(process.argv[2])
if (!Number.isSafeInteger(count) || count < 1 || count > 10_000) {
  process.stderr.write('usage: bare-uws-process.js <segments 1..10000>\n')
  process.exit(2)
}
// BARE_SHARED=1: each body in a SharedArrayBuffer, as a vcdn memory tier holds them with workers.
const isShared = process.env['BARE_SHARED'] === '1'
const bodies = new Map<string, Buffer>()
for (let i = 1; i <= count; i++) {
  const body = segmentBody(SEGMENT_BYTES, i)
  if (!isShared) {
    bodies.set(largeSegmentPath(i), body)
    continue
  }
  const shared = Buffer.from(new SharedArrayBuffer(body.length))
  body.copy(shared)
  bodies.set(largeSegmentPath(i), shared)
}

const app = uWS.App()
app.get('/*', (res, req) => {
  const body = bodies.get(req.getUrl())
  if (body === undefined) {
    res.writeStatus('404 Not Found').end()
    return
  }
  const total = body.length
  const [, isDone] = res.tryEnd(body, total)
  if (isDone) return
  // The socket did not take it all: resend the tail when it drains (offset = body bytes sent).
  res.onAborted(() => undefined)
  res.onWritable((offset) => {
    const [isOk] = res.tryEnd(body.subarray(offset), total)
    return isOk
  })
})
app.any('/*', (res) => {
  res.writeStatus('405 Method Not Allowed').end()
})
app.listen('127.0.0.1', 0, (socket) => {
  if (socket === false) {
    process.stderr.write('bare-uws: cannot listen on 127.0.0.1\n')
    process.exit(1)
  }
  process.stdout.write(`${JSON.stringify({ port: uWS.us_socket_local_port(socket) })}\n`)
})
process.stdin.on('end', () => process.exit(0))
process.stdin.on('error', () => process.exit(0))
process.stdin.resume()
process.on('SIGTERM', () => process.exit(0))
