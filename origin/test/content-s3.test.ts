// The origin content server over the S3 store (`store.kind = "s3"`), against a real S3 server
// (SeaweedFS on loopback): what shields see is the same as over the disk store.
import t from 'tap'
import { join } from 'node:path'
import { S3Store } from '../../shared/store/index.js'
import { startS3Server, startTier, tempDir, type S3Server } from '../../shared/testing/index.js'

const SECRET = 'origin-test-secret-0123456789abcdef'
const auth = { 'x-vcdn-tier': SECRET }

let server: S3Server
t.before(async () => {
  server = await startS3Server()
})
t.teardown(async () => {
  await server?.stop()
})

function s3Config(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    endpoint: server.endpoint,
    region: server.region,
    bucket: 'origin',
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    ...over,
  }
}

t.test('an origin whose S3 credentials are wrong refuses to start with ERR_STORE_AUTH', async (t) => {
  const tmp = tempDir()
  t.teardown(tmp.remove)
  await t.rejects(
    startTier(
      'origin',
      {
        tierSecret: SECRET,
        dataDir: join(tmp.dir, 'data'),
        store: { kind: 's3', s3: s3Config({ secretAccessKey: 'wrong-secret-key-0123456789abcdefghijkl' }) },
      },
      { dir: tmp.dir, timeoutMs: 30_000 },
    ),
    /exited with 2 before listening:[\s\S]*ERR_STORE_AUTH/,
  )
})

t.test('an origin whose bucket does not exist refuses to start with ERR_STORE_BUCKET', async (t) => {
  const tmp = tempDir()
  t.teardown(tmp.remove)
  await t.rejects(
    startTier(
      'origin',
      { tierSecret: SECRET, dataDir: join(tmp.dir, 'data'), store: { kind: 's3', s3: s3Config({ bucket: 'nope' }) } },
      { dir: tmp.dir, timeoutMs: 30_000 },
    ),
    /exited with 2 before listening:[\s\S]*ERR_STORE_BUCKET/,
  )
})

t.test('origin content server over S3', async (t) => {
  const tmp = tempDir()
  t.teardown(tmp.remove)
  const store = new S3Store({
    endpoint: server.endpoint,
    region: server.region,
    bucket: 'origin',
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    forcePathStyle: true,
  })
  t.teardown(() => store.close())
  await store.ensureBucket()
  const origin = await startTier(
    'origin',
    { tierSecret: SECRET, dataDir: join(tmp.dir, 'data'), store: { kind: 's3', s3: s3Config() } },
    { dir: tmp.dir, timeoutMs: 30_000 },
  )
  t.teardown(() => origin.stop())
  const seg = Buffer.alloc(2 * 1024 * 1024)
  for (let i = 0; i < seg.length; i++) seg[i] = (i * 7) % 256
  const put = await store.put('v/abc/720p/seg_00001.m4s', seg)
  await store.put('v/abc/master.m3u8', Buffer.from('#EXTM3U\n'))

  t.test('serves a segment from S3 with its ETag, length and immutable Cache-Control', async (t) => {
    const r = await fetch(`${origin.url}/v/abc/720p/seg_00001.m4s`, { headers: auth })
    t.equal(r.status, 200)
    t.equal(r.headers.get('etag'), put.etag)
    t.equal(r.headers.get('content-type'), 'video/iso.segment')
    t.equal(r.headers.get('content-length'), String(seg.length))
    t.equal(r.headers.get('cache-control'), 'public, max-age=31536000, immutable')
    t.ok(Buffer.from(await r.arrayBuffer()).equals(seg))
  })

  t.test('a range from S3 is exact; one past the end is 416', async (t) => {
    const r = await fetch(`${origin.url}/v/abc/720p/seg_00001.m4s`, {
      headers: { ...auth, range: 'bytes=1000000-1000999' },
    })
    t.equal(r.status, 206)
    t.equal(r.headers.get('content-range'), `bytes 1000000-1000999/${seg.length}`)
    t.ok(Buffer.from(await r.arrayBuffer()).equals(seg.subarray(1_000_000, 1_001_000)))
    const u = await fetch(`${origin.url}/v/abc/720p/seg_00001.m4s`, { headers: { ...auth, range: 'bytes=9999999-' } })
    t.equal(u.status, 416)
    await u.arrayBuffer()
  })

  t.test('If-None-Match with the S3 object ETag gives 304; a missing object 404', async (t) => {
    const inm = await fetch(`${origin.url}/v/abc/720p/seg_00001.m4s`, {
      headers: { ...auth, 'if-none-match': put.etag },
    })
    t.equal(inm.status, 304)
    await inm.arrayBuffer()
    const missing = await fetch(`${origin.url}/v/abc/720p/seg_99999.m4s`, { headers: auth })
    t.equal(missing.status, 404)
    await missing.arrayBuffer()
    const playlist = await fetch(`${origin.url}/v/abc/master.m3u8`, { headers: auth })
    t.equal(await playlist.text(), '#EXTM3U\n')
  })

  // Last: it stops the S3 server.
  t.test('with the S3 server gone, a request answers 503 ERR_STORE_UNAVAILABLE, not a hang', async (t) => {
    await server.stop()
    const startedMs = Date.now()
    const r = await fetch(`${origin.url}/v/abc/720p/seg_00001.m4s`, { headers: auth })
    t.equal(r.status, 503)
    t.match(await r.text(), /ERR_STORE_UNAVAILABLE/)
    t.ok(Date.now() - startedMs < 20_000, 'answered within the store timeouts')
  })
})
