// The control API of a real `vcdn origin` on 127.0.0.1: tus uploads (tus-js-client), auth,
// videos, nodes and purge fan-out, and the worker endpoints end to end.
import t from 'tap'
import { createHash, createHmac, randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { Upload } from 'tus-js-client'
import { FsStore } from '../../shared/store/index.js'
import { ScriptedOrigin, startTier, tempDir, waitFor } from '../../shared/testing/index.js'
import { splitTokenPath, TokenVerifier } from '../../shared/token/index.js'
import { mintToken, type Role } from '../src/auth.js'
import { openDb } from '../src/db.js'
import { SqliteJobQueue } from '../src/job-queue.js'

const SECRET = 'api-test-tier-secret-0123456789abcdef'
const JWT = { secret: 'api-test-jwt-secret-0123456789abcdef', issuer: 'vcdn', audience: 'vcdn-api' }
const KEYS = { k1: 'playback-key-one-0123456789abcdef' }
const MAX_UPLOAD = 64 * 1024 * 1024

const token = (sub: string, role: Role): string => mintToken({ sub, role, ttlS: 600 }, JWT)
const bearer = (sub: string, role: Role): Record<string, string> => ({ authorization: `Bearer ${token(sub, role)}` })
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** A JWT built by hand, to test what jsonwebtoken would never mint (alg none, expired, forged). */
function handJwt(header: object, payload: object, secret: string | null): string {
  const enc = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url')
  const body = `${enc(header)}.${enc(payload)}`
  return `${body}.${secret === null ? '' : createHmac('sha256', secret).update(body).digest('base64url')}`
}

interface VideoJson {
  id: string
  status: string
  progress: number
  title: string
  error: { code: string; message: string } | null
  durationS: number | null
  renditions: { name: string; width: number }[]
  thumbnails: { poster: string | null; sprites: string[]; vtt: string | null } | null
  playback: { hls: string; dash: string } | null
  upload?: { url: string; length: number | null }
}

t.test('origin control API', async (t) => {
  const tmp = tempDir()
  t.teardown(tmp.remove)
  const purges: { secret: string | undefined; body: string }[] = []
  const node = new ScriptedOrigin()
  node.routes.set('/purge', async (req, res) => {
    let body = ''
    for await (const c of req) body += String(c)
    purges.push({ secret: req.headers['x-vcdn-tier'] as string | undefined, body })
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...JSON.parse(body), removed: 3 }))
  })
  await node.listen()
  t.teardown(() => node.close())
  const storeDir = join(tmp.dir, 'store')
  const dataDir = join(tmp.dir, 'data')
  const store = new FsStore({ dir: storeDir })
  const origin = await startTier(
    'origin',
    {
      tierSecret: SECRET,
      dataDir,
      store: { kind: 'fs', dir: storeDir },
      jwt: JWT,
      signingKeys: KEYS,
      activeKey: 'k1',
      edgeBaseUrl: 'http://edge.test:8080',
      maxUploadBytes: MAX_UPLOAD,
      // These uploads are bytes, not videos: early rejection has its own test (upload-probe.test.ts).
      upload: { isProbed: false },
      accessLog: false,
      jobs: { backoffBaseMs: 1 },
      nodes: [{ id: 'edge-1', tier: 'edge', adminUrl: node.url }],
    },
    { dir: tmp.dir },
  )
  t.teardown(() => origin.stop())
  const api = (path: string, init: RequestInit & { as?: [string, Role] } = {}): Promise<Response> => {
    const { as, ...rest } = init
    const headers = {
      'content-type': 'application/json',
      ...(as ? bearer(...as) : {}),
      ...(rest.headers as Record<string, string>),
    }
    return fetch(`${origin.url}${path}`, { ...rest, headers })
  }
  const createVideo = async (owner: string, body: object = {}): Promise<VideoJson> => {
    const r = await api('/v1/videos', { method: 'POST', body: JSON.stringify(body), as: [owner, 'uploader'] })
    if (r.status !== 201) throw new Error(`create ${r.status} ${await r.text()}`)
    return (await r.json()) as VideoJson
  }
  const getVideo = async (id: string, as: [string, Role] = ['alice', 'uploader']): Promise<VideoJson> =>
    (await (await api(`/v1/videos/${id}`, { as })).json()) as VideoJson
  const codeOf = async (r: Response): Promise<string> => ((await r.json()) as { error: { code: string } }).error.code
  const tusUpload = (data: Buffer, opts: Partial<ConstructorParameters<typeof Upload>[1]>): Promise<Upload> =>
    new Promise((resolve, reject) => {
      const up: Upload = new Upload(data, {
        endpoint: `${origin.url}/v1/uploads/`,
        headers: bearer('alice', 'uploader'),
        retryDelays: [],
        ...opts,
        onSuccess: () => resolve(up),
        onError: reject,
      })
      up.start()
    })

  type ClaimedJob = { id: string; kind: string; videoId: string; attempt: number; leaseUntilMs: number }
  /** Other tests queue jobs too: take jobs until the one of `videoId` comes, failing the others for good. */
  const claimFor = async (videoId: string, workerId: string): Promise<ClaimedJob> => {
    const w = (path: string, body: object): Promise<Response> =>
      api(path, { method: 'POST', body: JSON.stringify({ workerId, ...body }), as: ['fleet', 'worker'] })
    for (let i = 0; i < 20; i++) {
      const got = ((await (await w('/v1/jobs/claim', { leaseMs: 30_000 })).json()) as { job: ClaimedJob | null }).job
      if (got === null) break
      if (got.videoId === videoId) return got
      await w(`/v1/jobs/${got.id}/fail`, {
        error: { code: 'ERR_TEST_SKIP', message: 'not this test', isRetryable: false },
      })
    }
    throw new Error(`no job for ${videoId}`)
  }

  /** Headers of alice's tus PATCH at `offset`. */
  const patchHeaders = (offset: number): Record<string, string> => ({
    ...bearer('alice', 'uploader'),
    'tus-resumable': '1.0.0',
    'content-type': 'application/offset+octet-stream',
    'upload-offset': String(offset),
  })
  /** A video of alice's whose 10-byte source arrived in one tus PATCH: its transcode job is queued. */
  const queuedVideo = async (): Promise<VideoJson> => {
    const video = await createVideo('alice', { size: 10 })
    const r = await fetch(`${origin.url}${video.upload!.url}`, {
      method: 'PATCH',
      headers: patchHeaders(0),
      body: new Uint8Array(10).fill(9),
    })
    if (r.status !== 204) throw new Error(`tus PATCH ${r.status} ${await r.text()}`)
    await waitFor(async () => (await getVideo(video.id)).status === 'queued', { what: 'queued' })
    return video
  }

  let uploadedVideoId = ''
  let uploadedData = Buffer.alloc(0)

  t.test('tus-js-client uploads a 12 MB file; the source lands in the store byte for byte', async (t) => {
    const video = await createVideo('alice', { title: 'first' })
    t.equal(video.status, 'uploading')
    t.match(video.id, /^[A-Za-z0-9_-]{16}$/)
    const data = randomBytes(12 * 1024 * 1024)
    await tusUpload(data, { metadata: { videoId: video.id, filename: 'a.mp4' }, chunkSize: 5 * 1024 * 1024 })
    const queued = await waitFor(
      async () => {
        const v = await getVideo(video.id)
        return v.status === 'queued' ? v : null
      },
      { what: 'video queued' },
    )
    t.equal(queued.status, 'queued')
    const got = await store.get(`sources/${video.id}/source`)
    t.ok(got)
    const chunks: Buffer[] = []
    for await (const c of got!.body) chunks.push(c as Buffer)
    t.equal(sha256(Buffer.concat(chunks)), sha256(data), 'source hash equals input')
    uploadedVideoId = video.id
    uploadedData = data
  })

  t.test('an upload cut mid-way keeps what arrived and resumes from the reported offset', async (t) => {
    const data = randomBytes(16 * 1024 * 1024)
    const video = await createVideo('alice', { title: 'cut', size: data.length })
    const url = `${origin.url}${video.upload!.url}`
    t.equal(video.upload!.length, data.length)
    const uploadId = video.upload!.url.split('/').pop()!
    // First attempt: one PATCH announcing every byte, cut after ~4 MB reached the server.
    const cut = request(url, {
      method: 'PATCH',
      headers: { ...patchHeaders(0), 'content-length': String(data.length) },
    })
    cut.on('error', () => undefined)
    const sentBytes = 4 * 1024 * 1024 + 12_345
    for (let i = 0; i < sentBytes; i += 64 * 1024) cut.write(data.subarray(i, Math.min(i + 64 * 1024, sentBytes)))
    await waitFor(() => statSync(join(dataDir, 'uploads', uploadId)).size === sentBytes, { what: 'bytes on disk' })
    cut.destroy()
    const head = await waitFor(
      async () => {
        const r = await fetch(url, {
          method: 'HEAD',
          headers: { ...bearer('alice', 'uploader'), 'tus-resumable': '1.0.0' },
        })
        const offset = Number(r.headers.get('upload-offset'))
        // The server notices the cut connection asynchronously: wait until the offset is settled
        // and equals what is on disk.
        return offset === sentBytes ? r : null
      },
      { what: 'partial offset' },
    )
    const offset = Number(head.headers.get('upload-offset'))
    t.equal(offset, sentBytes, 'HEAD reports every byte that was received')
    t.equal(head.headers.get('upload-length'), String(data.length))
    t.equal(head.headers.get('cache-control'), 'no-store')
    t.equal(head.headers.get('tus-resumable'), '1.0.0')
    const onDisk = readFileSync(join(dataDir, 'uploads', uploadId))
    t.ok(onDisk.equals(data.subarray(0, offset)), 'every byte kept is the right byte')
    // Resume with a new Upload on the same URL: the first PATCH starts at the reported offset.
    const patchOffsets: string[] = []
    await tusUpload(data, {
      uploadUrl: url,
      onBeforeRequest: (req) => {
        if (req.getMethod() === 'PATCH') patchOffsets.push(req.getHeader('Upload-Offset') ?? '')
      },
    })
    t.equal(patchOffsets[0], String(offset), 'resumed at the offset the server reported')
    await waitFor(async () => (await getVideo(video.id)).status === 'queued', { what: 'queued' })
    const got = await store.get(`sources/${video.id}/source`)
    const chunks: Buffer[] = []
    for await (const c of got!.body) chunks.push(c as Buffer)
    t.equal(sha256(Buffer.concat(chunks)), sha256(data), 'resumed source hash equals input')
  })

  t.test('tus refusals: offset mismatch 409, oversize 413, wrong content type 415, no version 412', async (t) => {
    const video = await createVideo('alice', { size: 100 })
    const url = `${origin.url}${video.upload!.url}`
    const tus = { ...bearer('alice', 'uploader'), 'tus-resumable': '1.0.0' }
    const patch = (offset: number, body: Buffer, extra: Record<string, string> = {}): Promise<Response> =>
      fetch(url, {
        method: 'PATCH',
        headers: {
          ...tus,
          'content-type': 'application/offset+octet-stream',
          'upload-offset': String(offset),
          ...extra,
        },
        body: new Uint8Array(body),
      })
    const ok = await patch(0, Buffer.alloc(10, 1))
    t.equal(ok.status, 204)
    t.equal(ok.headers.get('upload-offset'), '10')
    const mismatch = await patch(5, Buffer.alloc(10, 1))
    t.equal(mismatch.status, 409)
    t.equal(await codeOf(mismatch), 'ERR_UPLOAD_OFFSET')
    const tooMuch = await patch(10, Buffer.alloc(200, 1))
    t.equal(tooMuch.status, 413)
    await tooMuch.arrayBuffer()
    const badType = await patch(10, Buffer.alloc(1), { 'content-type': 'text/plain' })
    t.equal(badType.status, 415)
    await badType.arrayBuffer()
    const badSum = await patch(10, Buffer.alloc(10, 2), {
      'upload-checksum': `sha1 ${createHash('sha1').update('x').digest('base64')}`,
    })
    t.equal(badSum.status, 460)
    await badSum.arrayBuffer()
    const goodSum = await patch(10, Buffer.alloc(10, 2), {
      'upload-checksum': `sha1 ${createHash('sha1').update(Buffer.alloc(10, 2)).digest('base64')}`,
    })
    t.equal(goodSum.status, 204)
    t.equal(goodSum.headers.get('upload-offset'), '20')
    const noVersion = await fetch(url, { method: 'HEAD', headers: bearer('alice', 'uploader') })
    t.equal(noVersion.status, 412)
    const huge = await fetch(`${origin.url}/v1/uploads/`, {
      method: 'POST',
      headers: {
        ...tus,
        'upload-length': String(MAX_UPLOAD + 1),
        'upload-metadata': `videoId ${Buffer.from(video.id).toString('base64')}`,
      },
    })
    t.equal(huge.status, 413)
    t.equal(await codeOf(huge), 'ERR_UPLOAD_TOO_LARGE')
    const opts = await fetch(`${origin.url}/v1/uploads/`, { method: 'OPTIONS' })
    t.equal(opts.status, 204)
    t.equal(opts.headers.get('tus-version'), '1.0.0')
    t.equal(opts.headers.get('tus-max-size'), String(MAX_UPLOAD))
    t.match(opts.headers.get('tus-extension') ?? '', /creation.*termination/)
    t.equal(opts.headers.get('access-control-allow-origin'), '*')
    t.match(opts.headers.get('access-control-allow-headers') ?? '', /Upload-Offset/)
    const del = await fetch(url, { method: 'DELETE', headers: tus })
    t.equal(del.status, 204)
    const gone = await fetch(url, { method: 'HEAD', headers: tus })
    t.equal(gone.status, 404)
  })

  t.test('a chunked PATCH past Upload-Length is refused with 413 and keeps none of its bytes', async (t) => {
    const video = await createVideo('alice', { size: 100 })
    const url = `${origin.url}${video.upload!.url}`
    // No Content-Length (chunked), so the origin only learns the size while reading the body.
    const chunked = (offset: number, body: Buffer): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = request(url, { method: 'PATCH', headers: patchHeaders(offset) })
        req.once('response', (res) => {
          let text = ''
          res.on('data', (c: Buffer) => (text += c.toString()))
          res.once('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
        })
        req.once('error', reject)
        // write() then end(): with end(body) alone Node would send a Content-Length.
        req.write(body)
        req.end()
      })
    const over = await chunked(0, Buffer.alloc(150, 7))
    t.equal(over.status, 413)
    t.equal((JSON.parse(over.body) as { error: { code: string } }).error.code, 'ERR_UPLOAD_TOO_LARGE')
    const head = await fetch(url, {
      method: 'HEAD',
      headers: { ...bearer('alice', 'uploader'), 'tus-resumable': '1.0.0' },
    })
    t.equal(head.headers.get('upload-offset'), '0', 'the refused PATCH left no bytes')
    t.equal((await getVideo(video.id)).status, 'uploading', 'nothing was finalized')
    t.equal(await store.head(`sources/${video.id}/source`), null)
    // The upload is still whole-able: the right bytes arrive and only they reach the store.
    const right = Buffer.alloc(100, 3)
    const ok = await chunked(0, right)
    t.equal(ok.status, 204)
    await waitFor(async () => (await getVideo(video.id)).status === 'queued', { what: 'queued' })
    const got = await store.get(`sources/${video.id}/source`)
    const chunks: Buffer[] = []
    for await (const c of got!.body as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c))
    t.ok(Buffer.concat(chunks).equals(right), 'the source is the accepted bytes only')
  })

  t.test('JWTs: missing, forged, alg none and expired are 401; roles and owners are 403', async (t) => {
    const video = await createVideo('alice')
    const missing = await api(`/v1/videos/${video.id}`)
    t.equal(missing.status, 401)
    t.equal(await codeOf(missing), 'ERR_AUTH_MISSING')
    const nowS = Math.floor(Date.now() / 1000)
    const claims = { sub: 'alice', role: 'admin', iss: 'vcdn', aud: 'vcdn-api', iat: nowS, exp: nowS + 600 }
    const forged = handJwt({ alg: 'HS256', typ: 'JWT' }, claims, 'not-the-secret')
    const none = handJwt({ alg: 'none', typ: 'JWT' }, claims, null)
    const expired = handJwt({ alg: 'HS256', typ: 'JWT' }, { ...claims, iat: nowS - 7200, exp: nowS - 3600 }, JWT.secret)
    const wrongAud = handJwt({ alg: 'HS256', typ: 'JWT' }, { ...claims, aud: 'other' }, JWT.secret)
    for (const [name, jwt, code] of [
      ['forged', forged, 'ERR_AUTH_INVALID'],
      ['alg none', none, 'ERR_AUTH_INVALID'],
      ['expired', expired, 'ERR_AUTH_EXPIRED'],
      ['wrong audience', wrongAud, 'ERR_AUTH_INVALID'],
    ] as const) {
      const r = await api(`/v1/videos/${video.id}`, { headers: { authorization: `Bearer ${jwt}` } })
      t.equal(r.status, 401, name)
      t.equal(await codeOf(r), code, name)
    }
    const good = handJwt({ alg: 'HS256', typ: 'JWT' }, claims, JWT.secret)
    t.equal(
      (await api(`/v1/videos/${video.id}`, { headers: { authorization: `Bearer ${good}` } })).status,
      200,
      'hand-made valid token',
    )
    const other = await api(`/v1/videos/${video.id}`, { as: ['bob', 'uploader'] })
    t.equal(other.status, 403)
    t.equal(await codeOf(other), 'ERR_AUTH_OWNER')
    const otherPatch = await api(`/v1/videos/${video.id}`, {
      method: 'PATCH',
      body: '{"title":"x"}',
      as: ['bob', 'uploader'],
    })
    t.equal(otherPatch.status, 403)
    const otherDelete = await api(`/v1/videos/${video.id}`, { method: 'DELETE', as: ['bob', 'uploader'] })
    t.equal(otherDelete.status, 403)
    const admin = await api(`/v1/videos/${video.id}`, {
      method: 'PATCH',
      body: '{"title":"renamed by admin"}',
      as: ['root', 'admin'],
    })
    t.equal(admin.status, 200)
    t.equal(((await admin.json()) as VideoJson).title, 'renamed by admin')
    const worker = await api('/v1/videos', { as: ['w', 'worker'] })
    t.equal(worker.status, 403)
    t.equal(await codeOf(worker), 'ERR_AUTH_ROLE')
    const uploaderClaims = await api('/v1/jobs/claim', {
      method: 'POST',
      body: '{"workerId":"x"}',
      as: ['alice', 'uploader'],
    })
    t.equal(uploaderClaims.status, 403)
    const tusOther = await fetch(`${origin.url}${video.upload!.url}`, {
      method: 'HEAD',
      headers: { ...bearer('bob', 'uploader'), 'tus-resumable': '1.0.0' },
    })
    t.equal(tusOther.status, 403)
  })

  t.test('the list pages newest first with a cursor, scoped to the owner unless admin', async (t) => {
    const ids: string[] = []
    for (let i = 0; i < 5; i++) ids.push((await createVideo('carol', { title: `c${i}` })).id)
    const seen: string[] = []
    let cursor = ''
    let pages = 0
    for (;;) {
      const r = await api(`/v1/videos?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { as: ['carol', 'uploader'] })
      t.equal(r.status, 200)
      const page = (await r.json()) as { videos: VideoJson[]; nextCursor: string | null }
      pages++
      seen.push(...page.videos.map((v) => v.id))
      if (page.nextCursor === null) break
      cursor = page.nextCursor
    }
    t.equal(pages, 3)
    t.same(seen, [...ids].reverse(), 'newest first, no duplicates, nothing missing')
    const bobs = (await (await api('/v1/videos', { as: ['bob', 'uploader'] })).json()) as { videos: VideoJson[] }
    t.equal(bobs.videos.length, 0, 'bob sees none of carol’s videos')
    const admin = (await (await api('/v1/videos?owner=carol&limit=100', { as: ['root', 'admin'] })).json()) as {
      videos: VideoJson[]
    }
    t.equal(admin.videos.length, 5)
    const bad = await api('/v1/videos?cursor=garbage', { as: ['carol', 'uploader'] })
    t.equal(bad.status, 400)
    t.equal(await codeOf(bad), 'ERR_API_CURSOR')
  })

  t.test('nodes register with the tier secret; purge fans out and reports each node', async (t) => {
    const noSecret = await api('/v1/nodes', {
      method: 'POST',
      body: JSON.stringify({ id: 'x', tier: 'edge', adminUrl: 'http://127.0.0.1:1' }),
    })
    t.equal(noSecret.status, 401)
    const reg = await api('/v1/nodes', {
      method: 'POST',
      headers: { 'x-vcdn-tier': SECRET },
      body: JSON.stringify({ id: 'shield-dead', tier: 'shield', adminUrl: 'http://127.0.0.1:1' }),
    })
    t.equal(reg.status, 200)
    const list = (await (await api('/v1/nodes', { as: ['root', 'admin'] })).json()) as { nodes: { id: string }[] }
    t.same(
      list.nodes.map((n) => n.id),
      ['edge-1', 'shield-dead'],
    )
    t.equal((await api('/v1/nodes', { as: ['alice', 'uploader'] })).status, 403)
    const before = purges.length
    const r = await api('/v1/purge', {
      method: 'POST',
      body: JSON.stringify({ prefix: '/v/abc/' }),
      as: ['root', 'admin'],
    })
    t.equal(r.status, 200)
    const result = (await r.json()) as { nodes: { id: string; status: number; removed?: number; error?: string }[] }
    t.same(
      result.nodes.find((n) => n.id === 'edge-1'),
      { id: 'edge-1', tier: 'edge', status: 200, removed: 3 },
    )
    t.match(
      result.nodes.find((n) => n.id === 'shield-dead'),
      { status: 0, error: 'unreachable' },
    )
    t.equal(purges.length, before + 1)
    t.equal(purges.at(-1)?.secret, SECRET)
    // A node that was away says which generation it applied last and gets what it missed.
    const seq = (JSON.parse(purges.at(-1)!.body) as { seq: number }).seq
    const heartbeat = async (lastPurgeSeq: unknown): Promise<Response> =>
      api('/v1/nodes', {
        method: 'POST',
        headers: { 'x-vcdn-tier': SECRET },
        body: JSON.stringify({ id: 'shield-dead', tier: 'shield', adminUrl: 'http://127.0.0.1:1', lastPurgeSeq }),
      })
    t.match(await (await heartbeat(seq - 1)).json(), {
      purgeSeq: seq,
      purges: [{ seq, target: { prefix: '/v/abc/' }, mode: 'hard' }],
      isComplete: true,
    })
    t.match(await (await heartbeat(seq)).json(), { purgeSeq: seq, purges: [], isComplete: true })
    t.match(await (await heartbeat(null)).json(), { purgeSeq: seq, purges: [] }, 'a new node starts at the current one')
    for (const wrong of [-1, 1.5, 'x']) t.equal((await heartbeat(wrong)).status, 400, `lastPurgeSeq ${String(wrong)}`)
    const bad = await api('/v1/purge', {
      method: 'POST',
      body: JSON.stringify({ prefix: '/etc/' }),
      as: ['root', 'admin'],
    })
    t.equal(bad.status, 400)
  })

  t.test('delete removes the store objects and the source and purges every node', async (t) => {
    const video = await createVideo('alice')
    await store.put(`v/${video.id}/master.m3u8`, Buffer.from('#EXTM3U\n'))
    await store.put(`v/${video.id}/720p/seg_00001.m4s`, Buffer.alloc(100))
    await store.put(`sources/${video.id}/source`, Buffer.alloc(100))
    const before = purges.length
    const r = await api(`/v1/videos/${video.id}`, { method: 'DELETE', as: ['alice', 'uploader'] })
    t.equal(r.status, 200)
    const body = (await r.json()) as { removedObjects: number; purge: { nodes: { id: string; status: number }[] } }
    t.equal(body.removedObjects, 3)
    t.equal((await store.list(`v/${video.id}/`)).length, 0)
    t.equal(await store.head(`sources/${video.id}/source`), null)
    t.equal(purges.length, before + 1)
    // The purge carries its generation (a node that was away replays from it, docs/architecture.md §7.4).
    t.same(JSON.parse(purges.at(-1)!.body), { prefix: `/v/${video.id}/`, seq: JSON.parse(purges.at(-1)!.body).seq })
    t.ok(Number.isSafeInteger(JSON.parse(purges.at(-1)!.body).seq), 'with its purge generation')
    t.equal(purges.at(-1)?.secret, SECRET)
    t.equal((await api(`/v1/videos/${video.id}`, { as: ['alice', 'uploader'] })).status, 404)
  })

  t.test('a worker claims, downloads, uploads outputs and completes; the video plays with signed URLs', async (t) => {
    t.ok(uploadedVideoId, 'the first upload ran')
    const w = (path: string, body: object, workerId = 'w1'): Promise<Response> =>
      api(path, { method: 'POST', body: JSON.stringify({ workerId, ...body }), as: ['fleet', 'worker'] })
    const job = await claimFor(uploadedVideoId, 'w1')
    t.equal(job.kind, 'transcode')
    t.equal(job.attempt, 1)
    t.ok(job.leaseUntilMs > Date.now())
    t.equal((await getVideo(uploadedVideoId)).status, 'processing')

    const hb = await w(`/v1/jobs/${job.id}/heartbeat`, { leaseMs: 30_000, progress: 0.5 })
    t.equal(hb.status, 200)
    t.match(await hb.json(), { ok: true })
    t.equal((await getVideo(uploadedVideoId)).progress, 0.5)
    const stolen = await w(`/v1/jobs/${job.id}/heartbeat`, { leaseMs: 30_000, progress: 0.1 }, 'w2')
    t.equal(stolen.status, 409)
    t.equal(await codeOf(stolen), 'ERR_JOB_LEASE_LOST')

    const src = await api(`/v1/jobs/${job.id}/source?workerId=w1`, { as: ['fleet', 'worker'] })
    t.equal(src.status, 200)
    t.equal(sha256(Buffer.from(await src.arrayBuffer())), sha256(uploadedData), 'source download hash equals input')
    const part = await api(`/v1/jobs/${job.id}/source?workerId=w1`, {
      as: ['fleet', 'worker'],
      headers: { range: 'bytes=100-199' },
    })
    t.equal(part.status, 206)
    t.ok(Buffer.from(await part.arrayBuffer()).equals(uploadedData.subarray(100, 200)))
    const notHolder = await api(`/v1/jobs/${job.id}/source?workerId=w2`, { as: ['fleet', 'worker'] })
    t.equal(notHolder.status, 409)

    const outputs: Record<string, Buffer> = {
      [`v/${uploadedVideoId}/720p/init.mp4`]: randomBytes(1000),
      [`v/${uploadedVideoId}/720p/seg_00001.m4s`]: randomBytes(300_000),
      [`v/${uploadedVideoId}/720p/index.m3u8`]: Buffer.from('#EXTM3U\n#EXT-X-VERSION:7\n'),
      [`v/${uploadedVideoId}/thumbs/poster.jpg`]: randomBytes(500),
      [`v/${uploadedVideoId}/master.m3u8`]: Buffer.from('#EXTM3U\n'),
    }
    for (const [key, bytes] of Object.entries(outputs)) {
      const r = await api(`/v1/jobs/${job.id}/outputs/${key}?workerId=w1`, {
        method: 'PUT',
        body: new Uint8Array(bytes),
        as: ['fleet', 'worker'],
        headers: { 'content-type': 'application/octet-stream' },
      })
      t.equal(r.status, 201, key)
      t.match(await r.json(), { key, size: bytes.length })
    }
    const outside = await api(`/v1/jobs/${job.id}/outputs/v/someoneelse/x.m4s?workerId=w1`, {
      method: 'PUT',
      body: 'x',
      as: ['fleet', 'worker'],
    })
    t.equal(outside.status, 400)
    t.equal(await codeOf(outside), 'ERR_JOB_OUTPUT_KEY')
    const served = await fetch(`${origin.url}/v/${uploadedVideoId}/720p/seg_00001.m4s`, {
      headers: { 'x-vcdn-tier': SECRET },
    })
    t.ok(
      Buffer.from(await served.arrayBuffer()).equals(outputs[`v/${uploadedVideoId}/720p/seg_00001.m4s`]!),
      'the content server serves the output',
    )

    const result = {
      durationS: 12.5,
      renditions: [
        {
          name: '720p',
          width: 1280,
          height: 720,
          bandwidth: 3_300_000,
          averageBandwidth: 3_000_000,
          codecs: 'avc1.64001f,mp4a.40.2',
          frameRate: 30,
        },
      ],
      thumbnails: { poster: 'thumbs/poster.jpg', sprites: ['thumbs/sprite_000.jpg'], vtt: 'thumbs/thumbs.vtt' },
    }
    const done = await w(`/v1/jobs/${job.id}/complete`, { result })
    t.equal(done.status, 200)
    const again = await w(`/v1/jobs/${job.id}/complete`, { result })
    t.equal(again.status, 200, 'a repeated complete is a no-op')

    const video = await getVideo(uploadedVideoId)
    t.equal(video.status, 'ready')
    t.equal(video.progress, 1)
    t.equal(video.durationS, 12.5)
    t.match(video.renditions, [{ name: '720p', width: 1280 }])
    t.ok(video.playback)
    const verifier = new TokenVerifier({ keys: KEYS })
    for (const [url, path] of [
      [video.playback!.hls, `/v/${uploadedVideoId}/master.m3u8`],
      [video.playback!.dash, `/v/${uploadedVideoId}/manifest.mpd`],
      [video.thumbnails!.poster!, `/v/${uploadedVideoId}/thumbs/poster.jpg`],
    ] as const) {
      t.ok(url.startsWith('http://edge.test:8080/t/'), url)
      const split = splitTokenPath(new URL(url).pathname)
      t.equal(split?.path, path)
      t.doesNotThrow(() => verifier.verify(split!.token, split!.path, '203.0.113.9'), 'token verifies')
      t.throws(() => verifier.verify(split!.token, '/v/other/master.m3u8', '203.0.113.9'), { code: 'ERR_TOKEN_SCOPE' })
    }
  })

  t.test(
    "another worker credential quoting the lease holder's workerId is refused source, outputs, progress and complete",
    async (t) => {
      const video = await queuedVideo()
      const job = await claimFor(video.id, 'w7')
      const as = (sub: string): [string, Role] => [sub, 'worker']
      const post = (path: string, body: object, sub: string): Promise<Response> =>
        api(path, { method: 'POST', body: JSON.stringify({ workerId: 'w7', ...body }), as: as(sub) })
      const masterKey = `v/${video.id}/master.m3u8`
      const refusals: [string, () => Promise<Response>][] = [
        ['source', () => api(`/v1/jobs/${job.id}/source?workerId=w7`, { as: as('mallory') })],
        [
          'output',
          () =>
            api(`/v1/jobs/${job.id}/outputs/${masterKey}?workerId=w7`, {
              method: 'PUT',
              body: '#EXTM3U\n',
              as: as('mallory'),
              headers: { 'content-type': 'application/octet-stream' },
            }),
        ],
        ['heartbeat', () => post(`/v1/jobs/${job.id}/heartbeat`, { leaseMs: 30_000, progress: 0.9 }, 'mallory')],
        ['complete', () => post(`/v1/jobs/${job.id}/complete`, { result: { renditions: [] } }, 'mallory')],
        [
          'fail',
          () =>
            post(`/v1/jobs/${job.id}/fail`, { error: { code: 'ERR_X', message: 'x', isRetryable: false } }, 'mallory'),
        ],
      ]
      for (const [what, send] of refusals) {
        const r = await send()
        t.equal(r.status, 409, what)
        t.equal(await codeOf(r), 'ERR_JOB_LEASE_LOST', what)
      }
      t.equal(await store.head(masterKey), null, 'no master playlist was written')
      const v = await getVideo(video.id)
      t.equal(v.status, 'processing', "the video is still the holder's to finish")
      t.equal(v.progress, 0)
      // The credential that claimed still holds the lease.
      const src = await api(`/v1/jobs/${job.id}/source?workerId=w7`, { as: as('fleet') })
      t.equal(src.status, 200)
      t.equal(Buffer.from(await src.arrayBuffer()).length, 10)
      const hb = await post(`/v1/jobs/${job.id}/heartbeat`, { leaseMs: 30_000, progress: 0.5 }, 'fleet')
      t.equal(hb.status, 200)
      const done = await post(`/v1/jobs/${job.id}/complete`, { result: { renditions: [] } }, 'fleet')
      t.equal(done.status, 200)
      const late = await post(`/v1/jobs/${job.id}/complete`, { result: { renditions: [] } }, 'mallory')
      t.equal(late.status, 409, 'a done job is not "completed again" by another credential')
    },
  )

  t.test("a failed video shows its creator the coded message, never the worker's file paths", async (t) => {
    const video = await queuedVideo()
    const job = await claimFor(video.id, 'w8')
    const detail = 'ffprobe /var/lib/vcdn/transcoder/work/j-1/source: Invalid data found when processing input'
    const failed = await api(`/v1/jobs/${job.id}/fail`, {
      method: 'POST',
      body: JSON.stringify({
        workerId: 'w8',
        error: { code: 'ERR_TRANSCODE_NOT_VIDEO', message: detail, isRetryable: false },
      }),
      as: ['fleet', 'worker'],
    })
    t.equal(failed.status, 200)
    const seen = await api(`/v1/videos/${video.id}`, { as: ['alice', 'uploader'] })
    const text = await seen.text()
    t.same((JSON.parse(text) as VideoJson).error, {
      code: 'ERR_TRANSCODE_NOT_VIDEO',
      message: 'source is not a decodable video',
    })
    t.notOk(text.includes('/var/lib'), 'no server path in what the creator reads')
    await waitFor(() => origin.output().includes(detail), { what: 'the detail in the origin log' })
  })

  t.test('a non-retryable failure fails the video with the error; reprocess purges playlists', async (t) => {
    const video = await queuedVideo()
    const w = (path: string, body: object): Promise<Response> =>
      api(path, { method: 'POST', body: JSON.stringify({ workerId: 'w9', ...body }), as: ['fleet', 'worker'] })
    const claimed = await claimFor(video.id, 'w9')
    const failed = await w(`/v1/jobs/${claimed.id}/fail`, {
      error: { code: 'ERR_PROBE_NOT_VIDEO', message: 'not a video', isRetryable: false },
    })
    t.equal(failed.status, 200)
    const v = await getVideo(video.id)
    t.equal(v.status, 'failed')
    t.same(v.error, { code: 'ERR_PROBE_NOT_VIDEO', message: 'video processing failed' }, 'an unregistered code')
    const late = await w(`/v1/jobs/${claimed.id}/complete`, { result: { renditions: [] } })
    t.equal(late.status, 409, 'completing a failed job is refused')

    // Reprocess of the ready video: completion purges its prefix on every node.
    const re = await api(`/v1/videos/${uploadedVideoId}/reprocess`, { method: 'POST', as: ['alice', 'uploader'] })
    t.equal(re.status, 202)
    const job = await claimFor(uploadedVideoId, 'w9')
    const before = purges.length
    const done = await w(`/v1/jobs/${job.id}/complete`, { result: { durationS: 12.5, renditions: [] } })
    t.equal(done.status, 200)
    t.equal(purges.length, before + 1)
    t.same(JSON.parse(purges.at(-1)!.body), {
      prefix: `/v/${uploadedVideoId}/`,
      seq: JSON.parse(purges.at(-1)!.body).seq,
    })
    t.ok(Number.isSafeInteger(JSON.parse(purges.at(-1)!.body).seq), 'with its purge generation')
  })

  t.test(
    'a worker completing again after the origin settled the job but died before marking the video ready makes it ready',
    async (t) => {
      const video = await queuedVideo()
      const job = await claimFor(video.id, 'w8')
      const result = { durationS: 4, renditions: [] }
      // What a crash between the two steps of a completion leaves (docs/architecture.md §7.3): the bus
      // settled the job (done), the video is still processing. Settled here through the origin's own
      // queue on its database, the way the route does it.
      const db = openDb(join(dataDir, 'meta.db'))
      t.teardown(() => db.close())
      await new SqliteJobQueue({ db }).complete(job.id, 'fleet/w8', result) // the lease holder: JWT sub / workerId
      t.equal((await getVideo(video.id)).status, 'processing')
      const again = await api(`/v1/jobs/${job.id}/complete`, {
        method: 'POST',
        body: JSON.stringify({ workerId: 'w8', result }),
        as: ['fleet', 'worker'],
      })
      t.equal(again.status, 200)
      const v = await getVideo(video.id)
      t.equal(v.status, 'ready', 'the repeated completion finishes what the crash left')
      t.equal(v.durationS, 4)
    },
  )

  t.test('an output still uploading when its video is deleted is refused and not kept', async (t) => {
    const video = await queuedVideo()
    const job = await claimFor(video.id, 'w5')
    const key = `v/${video.id}/720p/seg_00001.m4s`
    // The PUT passes the lease check and streams its first bytes; the video is deleted; the rest arrives.
    const put = request(`${origin.url}/v1/jobs/${job.id}/outputs/${key}?workerId=w5`, {
      method: 'PUT',
      headers: { ...bearer('fleet', 'worker'), 'content-type': 'application/octet-stream' },
    })
    const answered = new Promise<{ status: number; body: string }>((resolve, reject) => {
      put.once('response', (res) => {
        let body = ''
        res.on('data', (c: Buffer) => (body += c.toString()))
        res.once('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      put.once('error', reject)
    })
    put.write(randomBytes(64 * 1024))
    // The first bytes are in the store's temp file beside the key (FsStore: `<key>~tmp-…`), so the
    // lease check is behind this PUT.
    const renditionDir = join(storeDir, 'v', video.id, '720p')
    await waitFor(
      () => existsSync(renditionDir) && readdirSync(renditionDir).some((n) => n.startsWith('seg_00001.m4s~tmp-')),
      { what: 'the output streaming into the store' },
    )
    const del = await api(`/v1/videos/${video.id}`, { method: 'DELETE', as: ['alice', 'uploader'] })
    t.equal(del.status, 200)
    put.end(randomBytes(64 * 1024))
    const got = await answered
    t.equal(got.status, 404)
    t.equal((JSON.parse(got.body) as { error: { code: string } }).error.code, 'ERR_JOB_NOT_FOUND')
    t.equal(await store.head(key), null, 'the late output is not in the store')
    t.same(await store.list(`v/${video.id}/`), [], 'nothing of the deleted video is left')
  })
})
