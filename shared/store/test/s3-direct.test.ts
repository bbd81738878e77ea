// Direct-to-store requests of S3Store against a real S3 server (SeaweedFS on loopback): presigned
// GET/PUT and multipart uploads whose parts go straight to the server with presigned URLs.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { isVcdnError } from '../../errors/index.js'
import { startS3Server, type S3Server } from '../../testing/index.js'
import { isDirectStore, S3Store, type PresignedRequest } from '../index.js'

let server: S3Server
let store: S3Store
t.before(async () => {
  server = await startS3Server()
  store = new S3Store({
    endpoint: server.endpoint,
    region: server.region,
    bucket: `direct-${randomBytes(3).toString('hex')}`,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    forcePathStyle: true,
    requestTimeoutMs: 20_000,
  })
  await store.ensureBucket()
})
t.teardown(async () => {
  store?.close()
  await server?.stop()
})

function send(req: PresignedRequest, body?: Buffer): Promise<Response> {
  return fetch(req.url, {
    method: req.method,
    headers: req.headers,
    ...(body !== undefined ? { body: new Uint8Array(body) } : {}),
  })
}

t.test('S3Store is a direct store', async (t) => {
  t.ok(isDirectStore(store))
})

t.test('a presigned PUT stores the object with its content type and a Store ETag head() reads back', async (t) => {
  const bytes = randomBytes(100_000)
  const put = await store.presignPut('v/p1/720p/seg_00001.m4s', { expiresInS: 60 })
  t.equal(put.method, 'PUT')
  t.equal(put.headers['content-type'], 'video/iso.segment')
  const r = await send(put, bytes)
  t.equal(r.status, 200, await r.text())
  const info = await store.head('v/p1/720p/seg_00001.m4s')
  t.equal(info?.size, bytes.length)
  t.equal(info?.contentType, 'video/iso.segment')
  const again = await store.presignPut('v/p1/720p/seg_00001.m4s', { expiresInS: 60 })
  await (await send(again, bytes)).arrayBuffer()
  t.not((await store.head('v/p1/720p/seg_00001.m4s'))?.etag, info?.etag, 'an equal rewrite is a new version')
})

t.test('a presigned GET reads the object; a tampered URL is refused by the server', async (t) => {
  const bytes = randomBytes(5000)
  await store.put('v/p2/master.m3u8', bytes)
  const get = await store.presignGet('v/p2/master.m3u8', { expiresInS: 60 })
  const r = await send(get)
  t.equal(r.status, 200)
  t.ok(Buffer.from(await r.arrayBuffer()).equals(bytes))
  const tampered = await send({ ...get, url: get.url.replace('v/p2/master.m3u8', 'v/p2/other.m3u8') })
  t.equal(tampered.status, 403)
  await tampered.arrayBuffer()
})

t.test('a URL signed with wrong credentials is refused by the server', async (t) => {
  const wrong = new S3Store({
    endpoint: server.endpoint,
    region: server.region,
    bucket: 'whatever',
    accessKeyId: server.accessKeyId,
    secretAccessKey: 'not-the-secret-0123456789abcdefghijklmn',
    forcePathStyle: true,
  })
  t.teardown(() => wrong.close())
  const r = await send(await wrong.presignPut('v/p3/x.m4s', { expiresInS: 60 }), Buffer.from('x'))
  t.equal(r.status, 403)
  await r.arrayBuffer()
})

t.test('a multipart upload through presigned part URLs: parts listed, completed, byte-identical', async (t) => {
  const key = 'sources/mp1/source'
  const partBytes = 5 * 1024 * 1024
  const bytes = randomBytes(partBytes * 2 + 1234)
  const uploadId = await store.createMultipart(key, { contentType: 'application/octet-stream' })
  const etags: string[] = []
  for (let n = 1; n <= 2; n++) {
    const r = await send(
      await store.presignPart(key, uploadId, n, { expiresInS: 60 }),
      bytes.subarray((n - 1) * partBytes, n * partBytes),
    )
    t.equal(r.status, 200)
    etags.push(r.headers.get('etag') ?? '')
    await r.arrayBuffer()
  }
  const listed = await store.listParts(key, uploadId)
  t.same(
    listed.map((p) => ({ n: p.n, size: p.size })),
    [
      { n: 1, size: partBytes },
      { n: 2, size: partBytes },
    ],
  )
  const last = await send(await store.presignPart(key, uploadId, 3, { expiresInS: 60 }), bytes.subarray(2 * partBytes))
  const lastEtag = last.headers.get('etag') ?? ''
  await last.arrayBuffer()
  const info = await store.completeMultipart(key, uploadId, [
    { n: 1, etag: etags[0] ?? '' },
    { n: 2, etag: etags[1] ?? '' },
    { n: 3, etag: lastEtag },
  ])
  t.equal(info.size, bytes.length)
  const got = await store.get(key)
  const chunks: Buffer[] = []
  for await (const c of got?.body ?? []) chunks.push(c as Buffer)
  t.ok(Buffer.concat(chunks).equals(bytes))
})

t.test('an aborted multipart upload is gone: listing its parts is ERR_STORE_MULTIPART', async (t) => {
  const key = 'sources/mp2/source'
  const uploadId = await store.createMultipart(key)
  await store.abortMultipart(key, uploadId)
  await store.abortMultipart(key, uploadId) // a second abort is not an error
  const err = await store.listParts(key, uploadId).catch((e: unknown) => e)
  t.ok(isVcdnError(err) && err.code === 'ERR_STORE_MULTIPART', String(err))
})
