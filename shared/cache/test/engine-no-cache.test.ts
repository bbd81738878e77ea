// `no-cache` and `max-age=0` answers are never handed to a later request without revalidation
// (RFC 9111 §4, §5.2.2.4), however close behind it arrives: while the first response is still
// streaming or while its fill is committing. A request that arrived before the response headers
// shares them (collapsed forwarding: the answer was produced for it too).
// Each row: upstream reply → first GET → a second GET at `when` → expected upstream requests.
import t from 'tap'
import type { HeaderMap } from '../../http/types.js'
import { ControlledBody, FakeSink, bytes, deferred, harness, ok } from './fixtures/harness.js'

const KEY = '/v/nc/seg_00001.m4s'

interface Row {
  reply: HeaderMap
  /** When the second request arrives. */
  when: 'while the first fill commits' | 'while the first body streams'
}

const rows: Row[] = [
  { reply: { 'cache-control': 'no-cache' }, when: 'while the first fill commits' },
  { reply: { 'cache-control': 'max-age=0' }, when: 'while the first fill commits' },
  { reply: { 'cache-control': 'no-cache', etag: '"v1"' }, when: 'while the first fill commits' },
  { reply: { 'cache-control': 's-maxage=0, max-age=60' }, when: 'while the first fill commits' },
  { reply: { 'cache-control': 'max-age=10', age: '10' }, when: 'while the first fill commits' },
  { reply: { 'cache-control': 'no-cache' }, when: 'while the first body streams' },
  { reply: { 'cache-control': 'max-age=0' }, when: 'while the first body streams' },
]

for (const { reply, when } of rows) {
  const answer = Object.entries(reply)
    .map(([name, value]) => `${name}: ${value}`)
    .join(', ')
  void t.test(`a request arriving ${when} after an answer with ${answer} goes upstream`, async (t) => {
    const h = await harness(t)
    const first = bytes(200_000, 1)
    const second = bytes(200_000, 2)
    const streaming = new ControlledBody()
    h.upstream.handler = () => {
      const n = h.upstream.calls.length
      if (n === 1 && when === 'while the first body streams') {
        return { status: 200, headers: { 'content-length': String(first.length), ...reply }, body: streaming }
      }
      return ok(n === 1 ? first : second, reply)
    }
    const a = new FakeSink()
    const pa = h.engine.serve({ method: 'GET', key: KEY, headers: {} }, a)
    if (when === 'while the first body streams') {
      streaming.push(first.subarray(0, 1000))
      await a.firstChunk.promise
    } else {
      // The first response is complete on the wire; its fill is now syncing and renaming.
      await a.done.promise
    }
    const b = new FakeSink()
    const pb = h.engine.serve({ method: 'GET', key: KEY, headers: {} }, b)
    if (when === 'while the first body streams') {
      streaming.push(first.subarray(1000))
      streaming.end()
    }
    const [ra, rb] = await Promise.all([pa, pb])
    t.equal(ra.status, 200)
    t.ok(a.body.equals(first), 'the first request gets the first answer whole')
    t.equal(h.upstream.calls.length, 2, 'the second request went upstream')
    t.equal(rb.status, 200)
    t.ok(b.body.equals(second), 'the second request gets the upstream’s new answer')
    t.not(rb.outcome, 'HIT')
  })
}

void t.test('100 back-to-back rounds of a max-age=0 answer: every request goes upstream', async (t) => {
  const h = await harness(t)
  let n = 0
  h.upstream.handler = () => ok(Buffer.from(`answer ${++n}`), { 'cache-control': 'max-age=0' })
  let previous = new FakeSink()
  let pending = h.engine.serve({ method: 'GET', key: KEY, headers: {} }, previous)
  for (let round = 1; round < 100; round++) {
    await previous.done.promise
    const sink = new FakeSink()
    const next = h.engine.serve({ method: 'GET', key: KEY, headers: {} }, sink)
    await pending
    pending = next
    previous = sink
  }
  await pending
  t.equal(h.upstream.calls.length, 100)
  t.equal(previous.body.toString(), 'answer 100')
})

void t.test('a request that arrived before the answer’s headers shares a max-age=0 answer', async (t) => {
  const h = await harness(t)
  const gate = deferred()
  h.upstream.handler = async () => {
    await gate.promise
    return ok(Buffer.from('one answer'), { 'cache-control': 'max-age=0' })
  }
  const a = h.get(KEY)
  const b = h.get(KEY)
  gate.resolve()
  const [ra, rb] = await Promise.all([a, b])
  t.equal(h.upstream.calls.length, 1, 'collapsed into one upstream request')
  t.equal(ra.sink.body.toString(), 'one answer')
  t.equal(rb.sink.body.toString(), 'one answer')
})

void t.test(
  'a request arriving while a no-cache answer with an ETag commits revalidates the stored copy',
  async (t) => {
    const h = await harness(t)
    const body = bytes(200_000, 4)
    h.upstream.handler = (_key, init) =>
      init.headers['if-none-match'] === '"v1"'
        ? { status: 304, headers: { etag: '"v1"', 'cache-control': 'no-cache' }, body: (async function* () {})() }
        : ok(body, { etag: '"v1"', 'cache-control': 'no-cache' })
    const a = new FakeSink()
    const pa = h.engine.serve({ method: 'GET', key: KEY, headers: {} }, a)
    await a.done.promise
    const b = new FakeSink()
    const rb = await h.engine.serve({ method: 'GET', key: KEY, headers: {} }, b)
    await pa
    t.equal(h.upstream.calls.length, 2)
    t.equal(h.upstream.calls[1]?.headers['if-none-match'], '"v1"', 'the second request is conditional')
    t.equal(rb.outcome, 'REVALIDATED')
    t.ok(b.body.equals(body))
  },
)

void t.test(
  'a request arriving after a no-cache answer’s last byte but before the upstream’s end of stream revalidates',
  async (t) => {
    // The client of the first request has every announced byte; the upstream's end of stream has
    // not been read yet (on a busy machine this moment is long). The second request must wait for
    // the commit and revalidate, not fetch the whole answer again unconditionally.
    const h = await harness(t)
    const body = bytes(200_000, 5)
    const streaming = new ControlledBody()
    h.upstream.handler = (_key, init) =>
      init.headers['if-none-match'] === '"v1"'
        ? { status: 304, headers: { etag: '"v1"', 'cache-control': 'no-cache' }, body: (async function* () {})() }
        : h.upstream.calls.length > 1
          ? ok(bytes(1000, 6), { etag: '"v2"', 'cache-control': 'no-cache' })
          : {
              status: 200,
              headers: { 'content-length': String(body.length), etag: '"v1"', 'cache-control': 'no-cache' },
              body: streaming,
            }
    const a = new FakeSink()
    const pa = h.engine.serve({ method: 'GET', key: KEY, headers: {} }, a)
    streaming.push(body)
    await a.firstChunk.promise
    t.equal(Buffer.concat(a.chunks).length, body.length, 'the first client has every announced byte')
    t.notOk(a.isEnded, 'the first fill has not seen the end of stream')
    const b = new FakeSink()
    const pb = h.engine.serve({ method: 'GET', key: KEY, headers: {} }, b)
    streaming.end()
    const [ra, rb] = await Promise.all([pa, pb])
    t.equal(ra.status, 200)
    t.equal(h.upstream.calls.length, 2)
    t.equal(h.upstream.calls[1]?.headers['if-none-match'], '"v1"', 'the second request is conditional')
    t.equal(rb.outcome, 'REVALIDATED')
    t.ok(b.body.equals(body))
  },
)
