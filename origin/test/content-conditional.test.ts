// The origin content server answers the shared Range/conditional table
// (shared/http/test/contract.ts) exactly as the caches do (RFC 9110 §13, §14).
import t from 'tap'
import { join } from 'node:path'
import { CONDITIONAL_CASES } from '../../shared/http/test/contract.js'
import { FsStore } from '../../shared/store/index.js'
import { startTier, tempDir } from '../../shared/testing/index.js'

const SECRET = 'origin-conditional-secret-0123456789abcdef'
const auth = { 'x-vcdn-tier': SECRET }

void t.test('origin content server: Range and conditional requests', async (t) => {
  const tmp = tempDir()
  t.teardown(tmp.remove)
  const store = new FsStore({ dir: join(tmp.dir, 'store') })
  const origin = await startTier(
    'origin',
    { tierSecret: SECRET, dataDir: join(tmp.dir, 'data'), store: { kind: 'fs', dir: join(tmp.dir, 'store') } },
    { dir: tmp.dir },
  )
  t.teardown(() => origin.stop())
  const body = Buffer.alloc(1000)
  for (let i = 0; i < body.length; i++) body[i] = i & 0xff
  await store.put('v/cond/seg_00001.m4s', body)
  const url = `${origin.url}/v/cond/seg_00001.m4s`
  const first = await fetch(url, { headers: auth })
  await first.arrayBuffer()
  const rep = {
    etag: first.headers.get('etag') ?? '',
    lastModified: first.headers.get('last-modified') ?? '',
    size: 1000,
  }

  for (const row of CONDITIONAL_CASES) {
    await t.test(`origin: ${row.name} → ${row.status}`, async (t) => {
      const r = await fetch(url, { headers: { ...auth, ...row.headers(rep) } })
      const got = Buffer.from(await r.arrayBuffer())
      t.equal(r.status, row.status)
      if (row.range !== undefined) {
        const [first, last] = [row.range[0], row.range[1] < 0 ? rep.size - 1 : row.range[1]]
        t.equal(r.headers.get('content-range'), `bytes ${first}-${last}/${rep.size}`)
        t.ok(got.equals(body.subarray(first, last + 1)))
      } else if (row.status === 200) {
        t.ok(got.equals(body))
      } else {
        t.equal(got.length, 0)
      }
    })
  }
})
