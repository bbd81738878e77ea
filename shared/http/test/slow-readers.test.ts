// Slow viewers get whole bodies: a client that reads, however slowly, is never cut by uWS's idle
// timer; one that stops reading is cut after sendTimeoutS. Raw sockets read at a bounded rate.
//
// The kernel's buffers on loopback hold several MB, so a cut shows late: each reader first reads
// slowly for longer than uWS's idle timer (10 s on a 4 s tick), then fast to the end, and must get
// every byte. Before the send ticker, uWS closed each of these sockets 10-14 s in.
import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import { RawConnection, slowGet as slowGetAt } from '../../testing/index.js'
import { HttpServer, type Handler } from '../index.js'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const MiB = 1024 * 1024
const KB = 1024
/**
 * Long enough to outlast uWS's 10 s idle timer and its 4 s tick with a margin, and the send
 * timeouts below, so a server that did not count a slow reader's progress would cut it here.
 */
const SLOW_PHASE_S = 24
const DEADLINE_MS = 120_000

const object = Buffer.alloc(16 * MiB)
for (let i = 0; i < object.length; i += 512) object[i] = (i / 512) % 251

async function serve(t: Test, handler: Handler, sendTimeoutS?: number): Promise<number> {
  const server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    handler,
    ...(sendTimeoutS !== undefined ? { sendTimeoutS } : {}),
  })
  const port = await server.listen()
  t.teardown(() => server.drain(0))
  return port
}

/** The whole object in one end() (a memory hit), or streamed in 256 KiB writes (a disk hit). */
const wholeBody: Handler = (_req, res) => {
  res.start(200, { 'content-type': 'application/octet-stream' }, object.length)
  res.end(object)
}
const streamedBody: Handler = async (_req, res) => {
  res.start(200, { 'content-type': 'application/octet-stream' }, object.length)
  await Promise.resolve()
  for (let off = 0; off < object.length && !res.isAborted; off += 256 * KB) {
    await res.write(object.subarray(off, off + 256 * KB))
  }
  res.end()
}

/** The same bytes with no Content-Length: a chunked body (an upstream that streams). */
const chunkedBody: Handler = async (_req, res) => {
  res.start(200, { 'content-type': 'application/octet-stream' })
  await Promise.resolve()
  for (let off = 0; off < object.length && !res.isAborted; off += 256 * KB) {
    await res.write(object.subarray(off, off + 256 * KB))
  }
  res.end()
}

/** GET /object, read slowly for SLOW_PHASE_S at bytesPerS, then at full speed to the end. */
function slowGet(port: number, bytesPerS: number, isBodyKept = true): ReturnType<typeof slowGetAt> {
  return slowGetAt(port, '/object', bytesPerS, { slowPhaseS: SLOW_PHASE_S, deadlineMs: DEADLINE_MS, isBodyKept })
}

t.test('a reader at 32 KB/s receives all of a 16 MiB object, whole, streamed or chunked', async (t) => {
  // Send timeouts shorter than the slow phase: the reader makes progress within them, so it is
  // never cut. Progress comes in steps: here the ticker (every 2 s) saw the reader's kernel take
  // bytes every 4.0 s (42 readers, on a quiet and a busy machine), so 5 s allowed one late step
  // only, and a late step cut a reader in a whole run (and 2 of 3 readers once in a loop beside it).
  const wholePort = await serve(t, wholeBody, 12)
  const streamedPort = await serve(t, streamedBody, 12)
  // A chunked body's progress is seen only when the socket drains what uWS holds, coarser.
  const chunkedPort = await serve(t, chunkedBody, 14)
  const [whole, streamed, chunked] = await Promise.all([
    slowGet(wholePort, 32 * KB),
    slowGet(streamedPort, 32 * KB),
    slowGet(chunkedPort, 32 * KB),
  ])
  t.equal(whole.status, 200)
  t.equal(whole.hash, sha(object), 'the whole body, end() at once')
  t.equal(streamed.status, 200)
  t.equal(streamed.hash, sha(object), 'the whole body, written in chunks under backpressure')
  t.equal(chunked.status, 200)
  t.equal(chunked.hash, sha(object), 'the whole body, chunked (no Content-Length)')
})

t.test('40 concurrent readers at 64 KB/s all receive whole 16 MiB bodies', async (t) => {
  const port = await serve(t, wholeBody)
  const results = await Promise.all(Array.from({ length: 40 }, () => slowGet(port, 64 * KB, false)))
  t.equal(results.filter((r) => r.status === 200 && r.bytes === object.length).length, 40, 'every body whole')
})

/** Serve with sendTimeoutS 1, stop reading after the first bytes; resolves ms from stop to cut (0: never). */
async function cutAfterStop(t: Test, body: Handler): Promise<number> {
  let onAborted: () => void = () => {}
  const aborted = new Promise<number>((resolve) => (onAborted = () => resolve(Date.now())))
  const port = await serve(
    t,
    (req, res) => {
      res.onAbort(onAborted)
      return body(req, res)
    },
    1,
  )
  const conn = await RawConnection.open(port)
  t.teardown(() => conn.destroy())
  await conn.write('GET /object HTTP/1.1\r\nHost: t\r\n\r\n')
  await conn.received(1, DEADLINE_MS)
  conn.stopReading()
  const stoppedAtMs = Date.now()
  let timer: NodeJS.Timeout | undefined
  const abortedAtMs = await Promise.race([
    aborted,
    new Promise<number>((resolve) => (timer = setTimeout(() => resolve(0), 30_000))),
  ])
  clearTimeout(timer)
  return abortedAtMs === 0 ? 0 : abortedAtMs - stoppedAtMs
}

t.test('a client that stops reading is cut after sendTimeoutS, whole, streamed or chunked', async (t) => {
  // One at a time: the kernel's buffers fill faster with the machine to one response.
  for (const [kind, body] of [
    ['whole', wholeBody],
    ['streamed', streamedBody],
    ['chunked', chunkedBody],
  ] as const) {
    const cutAfterMs = await cutAfterStop(t, body)
    // The send timeout (1 s) counts from the last byte the socket took, checked every 2 s; uWS's
    // own idle timer would cut no earlier than 8 s.
    t.ok(cutAfterMs >= 1000, `${kind}: not before sendTimeoutS (${cutAfterMs} ms)`)
    t.ok(cutAfterMs < 8000, `${kind}: before uWS's idle timer could (${cutAfterMs} ms)`)
  }
})
