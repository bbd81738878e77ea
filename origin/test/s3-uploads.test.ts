// The direct-to-store upload API (docs/architecture.md §7.2) of a real origin on a real S3 server
// (SeaweedFS on loopback): what it offers, the refusals of a wrong part list, the probe at
// completion, and the abort of a deleted video's upload; an origin on the fs store offers tus only.
import t from 'tap'
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3'
import {
  freePort,
  s3Bucket,
  startS3Server,
  startTier,
  tempDir,
  VCDN_BIN,
  type S3Server,
} from '../../shared/testing/index.js'

const execFileAsync = promisify(execFile)
const MIB = 1024 * 1024

interface PartUrl {
  n: number
  method: string
  url: string
  headers: Record<string, string>
}
interface Created {
  id: string
  upload: { protocol: string; offers: string[]; partSize: number; partCount: number; urls: PartUrl[] }
}

let server: S3Server
t.before(async () => {
  server = await startS3Server()
})
t.teardown(async () => {
  await server?.stop()
})

async function startOrigin(
  dir: string,
  store: Record<string, unknown>,
): Promise<{
  call: <T>(method: string, path: string, body?: unknown) => Promise<{ status: number; body: T }>
  stop: () => Promise<unknown>
}> {
  const config = {
    tierSecret: 's3-uploads-tier-secret-0123456789abcdef',
    dataDir: join(dir, 'data'),
    store,
    jwt: { secret: 's3-uploads-jwt-secret-0123456789abcdef', issuer: 'vcdn', audience: 'vcdn-api' },
    accessLog: false,
  }
  const file = join(dir, 'origin.json')
  writeFileSync(file, JSON.stringify(config))
  const origin = await startTier('origin', config, { dir, timeoutMs: 30_000 })
  const { stdout } = await execFileAsync(process.execPath, [
    ...[VCDN_BIN, 'token', '--config', file, '--sub', 'alice', '--role', 'uploader'],
  ])
  const token = stdout.trim()
  return {
    async call<T>(method: string, path: string, body?: unknown) {
      const r = await fetch(origin.url + path, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      })
      const text = await r.text()
      return { status: r.status, body: (text === '' ? null : JSON.parse(text)) as T }
    },
    stop: () => origin.stop(),
  }
}

t.test('with the S3 store', async (t) => {
  const tmp = tempDir('vcdn-s3-uploads-')
  t.teardown(tmp.remove)
  const { s3, bucket } = await s3Bucket(server, 's3-uploads')
  t.teardown(() => bucket.close())
  const admin = new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  })
  t.teardown(() => admin.destroy())
  const origin = await startOrigin(tmp.dir, { kind: 's3', s3 })
  t.teardown(origin.stop)

  t.test('offers s3-multipart first, with bounded part URLs and S3-sized parts', async (t) => {
    const size = 3 * 1024 * MIB
    const c = await origin.call<Created>('POST', '/v1/videos', {
      size,
      upload: { protocols: ['s3-multipart', 'tus'], partSize: 1 },
    })
    t.equal(c.status, 201)
    t.equal(c.body.upload.protocol, 's3-multipart')
    t.same(c.body.upload.offers, ['s3-multipart', 'tus'])
    t.equal(c.body.upload.partSize, 5 * MIB, 'a part is at least 5 MiB')
    t.equal(c.body.upload.partCount, Math.ceil(size / (5 * MIB)))
    t.equal(c.body.upload.urls.length, 100, 'at most 100 URLs per answer')
    const page = await origin.call<{ urls: PartUrl[] }>('GET', `/v1/videos/${c.body.id}/upload/parts?from=601`)
    t.same(
      page.body.urls.map((u) => u.n),
      Array.from({ length: Math.ceil(size / (5 * MIB)) - 600 }, (_, i) => 601 + i),
    )
    const tus = await origin.call<Created>('POST', '/v1/videos', { size: 10 })
    t.equal(tus.body.upload.protocol, 'tus', 'tus without asking')
    t.same(tus.body.upload.offers, ['s3-multipart', 'tus'])
    const tooBig = await origin.call('POST', '/v1/videos', { size: 1e15, upload: { protocols: ['s3-multipart'] } })
    t.equal(tooBig.status, 413)
  })

  t.test('a wrong part list is refused; a non-video completes into a failed video and its object goes', async (t) => {
    const bytes = Buffer.from('not a video at all')
    const c = await origin.call<Created>('POST', '/v1/videos', {
      size: bytes.length,
      upload: { protocols: ['s3-multipart'] },
    })
    const url = c.body.upload.urls[0] as PartUrl
    const put = await fetch(url.url, { method: url.method, headers: url.headers, body: new Uint8Array(bytes) })
    const etag = put.headers.get('etag') ?? ''
    await put.arrayBuffer()
    t.equal(put.status, 200)
    const listed = await origin.call<{ parts: { n: number; size: number }[] }>(
      'GET',
      `/v1/videos/${c.body.id}/upload/parts`,
    )
    t.same(
      listed.body.parts.map((p) => [p.n, p.size]),
      [[1, bytes.length]],
    )
    const complete = (parts: unknown): Promise<{ status: number; body: { error?: { code: string } } }> =>
      origin.call('POST', `/v1/videos/${c.body.id}/upload/complete`, { parts })
    const wrong = await complete([{ n: 1, etag: '"0123"' }])
    t.equal(wrong.status, 409)
    t.equal(wrong.body.error?.code, 'ERR_STORE_MULTIPART')
    t.equal((await complete([])).status, 409, 'a missing part')
    const done = await origin.call<{ status: string; error: { code: string } }>(
      'POST',
      `/v1/videos/${c.body.id}/upload/complete`,
      { parts: [{ n: 1, etag }] },
    )
    t.equal(done.status, 200)
    t.equal(done.body.status, 'failed')
    t.equal(done.body.error.code, 'ERR_UPLOAD_NOT_VIDEO')
    t.equal(await bucket.head(`sources/${c.body.id}/source`), null, 'the refused source is removed')
  })

  t.test('deleting a video aborts its unfinished multipart upload', async (t) => {
    const c = await origin.call<Created>('POST', '/v1/videos', { size: 100, upload: { protocols: ['s3-multipart'] } })
    const pending = async (): Promise<number> =>
      ((await admin.send(new ListMultipartUploadsCommand({ Bucket: 's3-uploads' }))).Uploads ?? []).filter(
        (u) => u.Key === `sources/${c.body.id}/source`,
      ).length
    t.equal(await pending(), 1)
    t.equal((await origin.call('DELETE', `/v1/videos/${c.body.id}`)).status, 200)
    t.equal(await pending(), 0)
    t.equal((await origin.call('GET', `/v1/videos/${c.body.id}/upload/parts`)).status, 404)
  })

  // Last: it stops the S3 server.
  t.test('with the S3 server gone, direct-upload calls answer 503 ERR_STORE_UNAVAILABLE, not a hang', async (t) => {
    const c = await origin.call<Created>('POST', '/v1/videos', { size: 100, upload: { protocols: ['s3-multipart'] } })
    await server.stop()
    const count = async (): Promise<number> =>
      (await origin.call<{ videos: unknown[] }>('GET', '/v1/videos?limit=100')).body.videos.length
    const before = await count()
    const startedMs = Date.now()
    const parts = await origin.call<{ error: { code: string } }>('GET', `/v1/videos/${c.body.id}/upload/parts`)
    t.equal(parts.status, 503)
    t.equal(parts.body.error.code, 'ERR_STORE_UNAVAILABLE')
    const created = await origin.call<{ error: { code: string } }>('POST', '/v1/videos', {
      size: 100,
      upload: { protocols: ['s3-multipart'] },
    })
    t.equal(created.status, 503)
    t.equal(created.body.error.code, 'ERR_STORE_UNAVAILABLE')
    t.ok(Date.now() - startedMs < 60_000, 'answered within the store timeouts')
    t.equal(await count(), before, 'no video is left behind by the refused create')
  })
})

t.test('an origin whose S3 server is down refuses to start with ERR_STORE_UNAVAILABLE', async (t) => {
  const tmp = tempDir('vcdn-s3-down-')
  t.teardown(tmp.remove)
  const port = await freePort() // nothing listens there
  await t.rejects(
    startOrigin(tmp.dir, {
      kind: 's3',
      s3: {
        endpoint: `http://127.0.0.1:${port}`,
        region: 'us-east-1',
        bucket: 'any',
        accessKeyId: 'any-key',
        secretAccessKey: 'any-secret-0123456789abcdefghijklmnopqrstuv',
      },
    }),
    /exited with 2 before listening:[\s\S]*ERR_STORE_UNAVAILABLE/,
  )
})

t.test('an origin on the fs store offers tus only', async (t) => {
  const tmp = tempDir('vcdn-fs-uploads-')
  t.teardown(tmp.remove)
  const origin = await startOrigin(tmp.dir, { kind: 'fs', dir: join(tmp.dir, 'store') })
  t.teardown(origin.stop)
  const fallback = await origin.call<Created>('POST', '/v1/videos', {
    size: 10,
    upload: { protocols: ['s3-multipart', 'tus'] },
  })
  t.equal(fallback.body.upload.protocol, 'tus')
  t.same(fallback.body.upload.offers, ['tus'])
  const only = await origin.call<{ error: { code: string } }>('POST', '/v1/videos', {
    size: 10,
    upload: { protocols: ['s3-multipart'] },
  })
  t.equal(only.status, 404)
  t.equal(only.body.error.code, 'ERR_STORE_NOT_DIRECT')
})
