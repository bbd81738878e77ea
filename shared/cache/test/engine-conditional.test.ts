// The cache engine answers the shared Range/conditional table (shared/http/test/contract.ts)
// from a stored response exactly as the origin's content server does (RFC 9110 §13, §14).
import t from 'tap'
import { CONDITIONAL_CASES, type Representation } from '../../http/test/contract.js'
import { bytes, harness, ok } from './fixtures/harness.js'

const KEY = '/v/cond/seg_00001.m4s'

for (const row of CONDITIONAL_CASES) {
  void t.test(`cache: ${row.name} → ${row.status}`, async (t) => {
    const h = await harness(t)
    const body = bytes(1000, 3)
    const rep: Representation = {
      etag: '"e1"',
      lastModified: new Date(h.clock.now - 3600_000).toUTCString(),
      size: body.length,
    }
    h.upstream.handler = () =>
      ok(body, { etag: rep.etag, 'last-modified': rep.lastModified, 'cache-control': 'max-age=600' })
    await h.get(KEY)
    const got = await h.get(KEY, row.headers(rep))
    t.equal(got.result.outcome, 'HIT')
    t.equal(got.sink.status, row.status)
    if (row.range !== undefined) {
      const [first, last] = [row.range[0], row.range[1] < 0 ? rep.size - 1 : row.range[1]]
      t.equal(got.sink.headers?.['content-range'], `bytes ${first}-${last}/${rep.size}`)
      t.ok(got.sink.body.equals(body.subarray(first, last + 1)))
    } else if (row.status === 200) {
      t.ok(got.sink.body.equals(body))
    } else {
      t.equal(got.sink.received, 0)
    }
    t.equal(h.upstream.calls.length, 1)
  })
}

void t.test('cache: If-Modified-Since on a stored response without Last-Modified compares with its Date', async (t) => {
  // RFC 9111 §4.3.2; the origin always sends Last-Modified, other upstreams may not.
  const h = await harness(t)
  const date = new Date(h.clock.now).toUTCString()
  h.upstream.handler = () => ok(bytes(100, 5), { date, 'cache-control': 'max-age=600' })
  await h.get(KEY)
  const same = await h.get(KEY, { 'if-modified-since': date })
  t.equal(same.sink.status, 304)
  const earlier = await h.get(KEY, { 'if-modified-since': new Date(h.clock.now - 1000).toUTCString() })
  t.equal(earlier.sink.status, 200)
  t.equal(h.upstream.calls.length, 1)
})
