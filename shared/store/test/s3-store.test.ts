// S3Store against a real S3 server (SeaweedFS, started by shared/testing on loopback): the Store
// contract, multipart, exact ranges, and S3 failures as coded errors.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  S3Client,
} from '@aws-sdk/client-s3'
import { freePort, startS3Server, type S3Server } from '../../testing/index.js'
import { S3Store, type S3StoreOptions } from '../index.js'
import { storeContract } from './contract.js'

let server: S3Server
let admin: S3Client
let buckets = 0
t.before(async () => {
  server = await startS3Server()
  admin = new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  })
})
t.teardown(async () => {
  admin?.destroy()
  await server?.stop()
})

function options(over: Partial<S3StoreOptions> = {}): S3StoreOptions {
  return {
    endpoint: server.endpoint,
    region: server.region,
    bucket: 'vcdn',
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    forcePathStyle: true,
    requestTimeoutMs: 20_000,
    ...over,
  }
}

/** A fresh bucket per store: the contract wants an empty store for every subtest. */
async function freshStore(over: Partial<S3StoreOptions> = {}): Promise<S3Store> {
  const bucket = `vcdn-test-${++buckets}-${randomBytes(3).toString('hex')}`
  await admin.send(new CreateBucketCommand({ Bucket: bucket }))
  const store = new S3Store(options({ bucket, ...over }))
  bucketNames.set(store, bucket)
  return store
}

const bucketNames = new WeakMap<S3Store, string>()
function bucketOf(store: S3Store): string {
  const bucket = bucketNames.get(store)
  if (bucket === undefined) throw new Error('not a freshStore')
  return bucket
}

async function readAll(body: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of body) chunks.push(Buffer.from(chunk as Uint8Array))
  return Buffer.concat(chunks)
}

async function* chunked(data: Buffer, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < data.length; i += size) {
    await new Promise((r) => setImmediate(r))
    yield data.subarray(i, i + size)
  }
}

t.test('S3Store passes the Store contract', async (t) => {
  storeContract(t, async () => {
    const store = await freshStore()
    return { store, cleanup: async () => store.close() }
  })
})

t.test('an object larger than the multipart threshold round-trips byte-identical', async (t) => {
  const partSizeBytes = 5 * 1024 * 1024
  const store = await freshStore({ partSizeBytes, multipartThresholdBytes: partSizeBytes })
  t.teardown(() => store.close())
  const data = randomBytes(2 * partSizeBytes + 123_457) // three parts, the last one short
  const put = await store.put('sources/big/source.mp4', chunked(data, 64 * 1024))
  t.equal(put.size, data.length)
  const got = await store.get('sources/big/source.mp4')
  t.ok(got)
  if (!got) return
  t.same(got.info, put, 'get describes what put returned')
  const bytes = await readAll(got.body)
  t.equal(bytes.length, data.length)
  t.equal(createHash('sha256').update(bytes).digest('hex'), createHash('sha256').update(data).digest('hex'))
  const raw = await admin.send(new HeadObjectCommand({ Bucket: bucketOf(store), Key: 'sources/big/source.mp4' }))
  t.match(raw.ETag, /-3"$/, 'S3 assembled it from three parts (a multipart ETag ends in -<parts>)')
})

t.test('a multipart put whose body fails is aborted and leaves nothing behind', async (t) => {
  const partSizeBytes = 5 * 1024 * 1024
  const store = await freshStore({ partSizeBytes, multipartThresholdBytes: partSizeBytes })
  t.teardown(() => store.close())
  const boom = new Error('producer failed after two parts')
  async function* failing(): AsyncIterable<Uint8Array> {
    yield* chunked(randomBytes(2 * partSizeBytes + 10), 256 * 1024)
    throw boom
  }
  await t.rejects(store.put('sources/broken/source.mp4', failing()), boom)
  t.equal(await store.head('sources/broken/source.mp4'), null)
  const uploads = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucketOf(store) }))
  t.same(uploads.Uploads ?? [], [], 'no multipart upload is left open')
  // The listing above would show an open upload: one left open on purpose is listed.
  const open = await admin.send(new CreateMultipartUploadCommand({ Bucket: bucketOf(store), Key: 'sources/x/source' }))
  const listed = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucketOf(store) }))
  t.same(
    (listed.Uploads ?? []).map((u) => u.UploadId),
    [open.UploadId],
  )
  await admin.send(
    new AbortMultipartUploadCommand({ Bucket: bucketOf(store), Key: 'sources/x/source', UploadId: open.UploadId }),
  )
})

t.test('a range read of an S3 object is exact', async (t) => {
  const store = await freshStore()
  t.teardown(() => store.close())
  const data = randomBytes(1_000_003)
  await store.put('v/r/720p/seg_00001.m4s', data)
  for (const [start, end] of [
    [0, 0],
    [0, 99_999],
    [500_000, 500_000],
    [123_456, 654_321],
    [999_000, 1_000_002],
    [999_999, 5_000_000],
  ] as const) {
    const got = await store.get('v/r/720p/seg_00001.m4s', { start, end })
    t.ok(got)
    if (!got) continue
    t.equal(got.info.size, data.length, 'info describes the whole object')
    t.ok((await readAll(got.body)).equals(data.subarray(start, Math.min(end, data.length - 1) + 1)), `${start}-${end}`)
  }
  await t.rejects(store.get('v/r/720p/seg_00001.m4s', { start: 1_000_003, end: 1_000_010 }), {
    code: 'ERR_REQUEST_RANGE',
  })
})

t.test('wrong credentials are a coded error at start-up and on the request', async (t) => {
  const good = await freshStore()
  t.teardown(() => good.close())
  await good.put('v/a/x.m4s', Buffer.from('x'))
  const store = new S3Store(options({ bucket: bucketOf(good), secretAccessKey: 'wrong-secret-0000000000000000' }))
  t.teardown(() => store.close())
  await t.rejects(store.check(), { code: 'ERR_STORE_AUTH', status: 503 })
  await t.rejects(store.head('v/a/x.m4s'), { code: 'ERR_STORE_AUTH' })
  await t.rejects(store.get('v/a/x.m4s'), { code: 'ERR_STORE_AUTH' })
  await t.rejects(store.put('v/a/y.m4s', Buffer.from('y')), { code: 'ERR_STORE_AUTH' })
  await t.rejects(store.list('v/'), { code: 'ERR_STORE_AUTH' })
  await t.rejects(store.deletePrefix('v/'), { code: 'ERR_STORE_AUTH' })
})

t.test('a missing bucket is a coded error at start-up and on the request', async (t) => {
  const store = new S3Store(options({ bucket: 'vcdn-no-such-bucket' }))
  t.teardown(() => store.close())
  await t.rejects(store.check(), { code: 'ERR_STORE_BUCKET', status: 503 })
  await t.rejects(store.put('v/a/x.m4s', Buffer.from('x')), { code: 'ERR_STORE_BUCKET' })
  await t.rejects(store.list('v/'), { code: 'ERR_STORE_BUCKET' })
})

t.test('a server that is down is a coded error within the timeouts, not a hang', async (t) => {
  const port = await freePort() // nothing listens there
  const store = new S3Store(
    options({ endpoint: `http://127.0.0.1:${port}`, connectTimeoutMs: 1000, requestTimeoutMs: 2000, maxAttempts: 2 }),
  )
  t.teardown(() => store.close())
  const startedMs = Date.now()
  await t.rejects(store.check(), { code: 'ERR_STORE_UNAVAILABLE', status: 503 })
  await t.rejects(store.head('v/a/x.m4s'), { code: 'ERR_STORE_UNAVAILABLE' })
  await t.rejects(store.get('v/a/x.m4s'), { code: 'ERR_STORE_UNAVAILABLE' })
  await t.rejects(store.put('v/a/x.m4s', Buffer.from('x')), { code: 'ERR_STORE_UNAVAILABLE' })
  t.ok(Date.now() - startedMs < 30_000, 'every call fails fast')
})

t.test('a server that accepts connections but never answers times out with a coded error', async (t) => {
  const { createServer } = await import('node:net')
  const sockets = new Set<import('node:net').Socket>()
  const silent = createServer((s) => sockets.add(s)) // reads nothing, answers nothing
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    silent.close()
  })
  const address = silent.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const store = new S3Store(options({ endpoint: `http://127.0.0.1:${port}`, requestTimeoutMs: 500, maxAttempts: 1 }))
  t.teardown(() => store.close())
  await t.rejects(store.check(), { code: 'ERR_STORE_UNAVAILABLE' })
  await t.rejects(store.head('v/a/x.m4s'), { code: 'ERR_STORE_UNAVAILABLE' })
})

t.test('the constructor names the invalid field', async (t) => {
  t.throws(() => new S3Store(options({ bucket: '' })), /options\.bucket/)
  t.throws(() => new S3Store(options({ endpoint: 'ftp://x' })), /options\.endpoint/)
  t.throws(() => new S3Store(options({ partSizeBytes: 1024 })), /options\.partSizeBytes/)
  t.throws(
    () => new S3Store(options({ partSizeBytes: 8 * 1024 * 1024, multipartThresholdBytes: 6 * 1024 * 1024 })),
    /options\.multipartThresholdBytes/,
  )
})
