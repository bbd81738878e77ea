// The origin content server as shields see it: a real `vcdn origin` over a disk store.
import t from 'tap'
import { join } from 'node:path'
import { FsStore } from '../../shared/store/index.js'
import { rawRequest, startTier, tempDir } from '../../shared/testing/index.js'

const SECRET = 'origin-test-secret-0123456789abcdef'
const auth = { 'x-vcdn-tier': SECRET }

t.test('origin content server', async (t) => {
  const tmp = tempDir()
  t.teardown(tmp.remove)
  const store = new FsStore({ dir: join(tmp.dir, 'store') })
  const origin = await startTier(
    'origin',
    { tierSecret: SECRET, dataDir: join(tmp.dir, 'data'), store: { kind: 'fs', dir: join(tmp.dir, 'store') } },
    { dir: tmp.dir },
  )
  t.teardown(() => origin.stop())
  const seg = Buffer.alloc(50_000, 7)
  await store.put('v/abc/720p/seg_00001.m4s', seg)
  await store.put('v/abc/master.m3u8', Buffer.from('#EXTM3U\n'))

  t.test('serves segments with a strong ETag, Last-Modified and immutable Cache-Control', async (t) => {
    const r = await fetch(`${origin.url}/v/abc/720p/seg_00001.m4s`, { headers: auth })
    t.equal(r.status, 200)
    t.match(r.headers.get('etag') ?? '', /^"[^"]+"$/, 'strong etag')
    t.ok(Date.parse(r.headers.get('last-modified') ?? '') > 0)
    t.equal(r.headers.get('cache-control'), 'public, max-age=31536000, immutable')
    t.equal(r.headers.get('content-type'), 'video/iso.segment')
    t.equal(r.headers.get('content-length'), '50000')
    t.same(Buffer.from(await r.arrayBuffer()), seg)
  })

  t.test('playlists are cacheable but not immutable', async (t) => {
    const r = await fetch(`${origin.url}/v/abc/master.m3u8`, { headers: auth })
    t.equal(r.headers.get('content-type'), 'application/vnd.apple.mpegurl')
    t.match(r.headers.get('cache-control') ?? '', /max-age=60/)
    t.notMatch(r.headers.get('cache-control') ?? '', /immutable/)
    await r.arrayBuffer()
  })

  t.test('HEAD reports the length without a body', async (t) => {
    const r = await fetch(`${origin.url}/v/abc/720p/seg_00001.m4s`, { method: 'HEAD', headers: auth })
    t.equal(r.status, 200)
    t.equal(r.headers.get('content-length'), '50000')
    t.equal((await r.arrayBuffer()).byteLength, 0)
  })

  t.test('single ranges give 206, unsatisfiable ones 416', async (t) => {
    const r = await fetch(`${origin.url}/v/abc/720p/seg_00001.m4s`, { headers: { ...auth, range: 'bytes=10-19' } })
    t.equal(r.status, 206)
    t.equal(r.headers.get('content-range'), 'bytes 10-19/50000')
    t.equal((await r.arrayBuffer()).byteLength, 10)
    const u = await fetch(`${origin.url}/v/abc/720p/seg_00001.m4s`, { headers: { ...auth, range: 'bytes=60000-' } })
    t.equal(u.status, 416)
    t.equal(u.headers.get('content-range'), 'bytes */50000')
    await u.arrayBuffer()
  })

  t.test('If-None-Match and If-Modified-Since give 304', async (t) => {
    const r = await fetch(`${origin.url}/v/abc/720p/seg_00001.m4s`, { headers: auth })
    await r.arrayBuffer()
    const inm = await fetch(`${origin.url}/v/abc/720p/seg_00001.m4s`, {
      headers: { ...auth, 'if-none-match': r.headers.get('etag')! },
    })
    t.equal(inm.status, 304)
    const ims = await fetch(`${origin.url}/v/abc/720p/seg_00001.m4s`, {
      headers: { ...auth, 'if-modified-since': r.headers.get('last-modified')! },
    })
    t.equal(ims.status, 304)
    const changed = await fetch(`${origin.url}/v/abc/720p/seg_00001.m4s`, {
      headers: { ...auth, 'if-none-match': '"other"' },
    })
    t.equal(changed.status, 200)
    await changed.arrayBuffer()
  })

  t.test('refuses requests without the tier secret, bad keys, other methods; 404 is briefly cacheable', async (t) => {
    const noAuth = await fetch(`${origin.url}/v/abc/master.m3u8`)
    t.equal(noAuth.status, 401)
    t.equal(((await noAuth.json()) as { error: { code: string } }).error.code, 'ERR_TIER_AUTH')
    const bad = await rawRequest(origin.port, `GET /v/abc/../x HTTP/1.1\r\nHost: x\r\nx-vcdn-tier: ${SECRET}\r\n\r\n`)
    t.equal(bad.status, 400)
    const post = await fetch(`${origin.url}/v/abc/master.m3u8`, { method: 'POST', headers: auth, body: 'x' })
    t.equal(post.status, 405)
    await post.arrayBuffer()
    const missing = await fetch(`${origin.url}/v/abc/nope.m4s`, { headers: auth })
    t.equal(missing.status, 404)
    t.equal(missing.headers.get('cache-control'), 'public, max-age=10')
    await missing.arrayBuffer()
  })
})
