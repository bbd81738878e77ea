// An origin whose disks fill up (4 MiB tmpfs mounts over its uploads dir and its store, in a
// private mount namespace only the origin process sees). A creator's bytes are never lost to a
// full disk: a PATCH that cannot be written answers a coded 507 and keeps what it wrote, so the
// upload resumes once there is room; an upload that has every byte but cannot reach the store is
// never expired and is moved into the store once there is room.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, statfsSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { smallDisksWrap, startTier, tempDir, waitFor } from '../../shared/testing/index.js'
import { mintToken } from '../src/auth.js'

const JWT = { secret: 'full-disk-jwt-secret-0123456789abcdef', issuer: 'vcdn', audience: 'vcdn-api' }
const MIB = 1024 * 1024
const UPLOAD_TTL_MS = 4000
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

t.test('an origin whose disks fill up', async (t) => {
  const tmp = tempDir('vcdn-origin-full-')
  t.teardown(tmp.remove)
  const dataDir = join(tmp.dir, 'data')
  const uploadsDir = join(dataDir, 'uploads')
  const storeDir = join(tmp.dir, 'store')
  mkdirSync(uploadsDir, { recursive: true })
  mkdirSync(storeDir)
  const origin = await startTier(
    'origin',
    {
      tierSecret: 'full-disk-tier-secret-0123456789abcdef',
      dataDir,
      store: { kind: 'fs', dir: storeDir },
      jwt: JWT,
      signingKeys: { k1: 'full-disk-playback-key-0123456789abcdef' },
      activeKey: 'k1',
      edgeBaseUrl: 'http://edge.test:8080',
      uploadTtlMs: UPLOAD_TTL_MS,
      // These uploads are bytes, not videos: early rejection has its own test (upload-probe.test.ts).
      upload: { isProbed: false },
      accessLog: false,
    },
    {
      dir: tmp.dir,
      wrap: smallDisksWrap([
        { dir: uploadsDir, sizeMiB: 4 },
        { dir: storeDir, sizeMiB: 4 },
      ]),
    },
  )
  t.teardown(() => origin.stop())
  // The origin's view of its two small disks (its mount namespace) through /proc.
  const seen = (dir: string): string => `/proc/${origin.proc.pid}/root${dir}`
  const auth = { authorization: `Bearer ${mintToken({ sub: 'alice', role: 'uploader', ttlS: 600 }, JWT)}` }
  const tus = { ...auth, 'tus-resumable': '1.0.0' }
  const newVideo = async (size: number): Promise<{ id: string; uploadUrl: string }> => {
    const r = await fetch(`${origin.url}/v1/videos`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ size }),
    })
    t.equal(r.status, 201)
    const v = (await r.json()) as { id: string; upload: { url: string } }
    return { id: v.id, uploadUrl: `${origin.url}${v.upload.url}` }
  }
  const patch = (url: string, offset: number, bytes: Uint8Array): Promise<Response> =>
    fetch(url, {
      method: 'PATCH',
      headers: { ...tus, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset) },
      body: new Uint8Array(bytes),
    })
  const offsetOf = async (url: string): Promise<{ status: number; offset: number }> => {
    const r = await fetch(url, { method: 'HEAD', headers: tus })
    return { status: r.status, offset: Number(r.headers.get('upload-offset')) }
  }
  const statusOf = async (id: string): Promise<string> => {
    const r = await fetch(`${origin.url}/v1/videos/${id}`, { headers: auth })
    return ((await r.json()) as { status: string }).status
  }
  const sourceInStore = (id: string): Buffer | null => {
    const path = join(seen(storeDir), 'sources', id, 'source')
    return existsSync(path) ? readFileSync(path) : null
  }

  t.test('a PATCH the upload disk cannot hold is a coded 507 that keeps what it wrote', async (t) => {
    const filler = join(seen(uploadsDir), 'filler')
    writeFileSync(filler, Buffer.alloc(3 * MIB))
    const data = randomBytes(2 * MIB)
    const video = await newVideo(data.length)
    const full = await patch(video.uploadUrl, 0, data)
    t.equal(full.status, 507)
    t.equal(((await full.json()) as { error: { code: string } }).error.code, 'ERR_STORE_FULL')
    const kept = await offsetOf(video.uploadUrl)
    t.equal(kept.status, 200)
    t.ok(kept.offset > 0 && kept.offset < data.length, `the bytes that fitted are kept (${kept.offset})`)

    unlinkSync(filler)
    const rest = await patch(video.uploadUrl, kept.offset, data.subarray(kept.offset))
    t.equal(rest.status, 204, 'the upload resumes from the kept offset once there is room')
    t.equal((await offsetOf(video.uploadUrl)).offset, data.length)
    await waitFor(async () => (await statusOf(video.id)) === 'queued', { what: 'the upload queued' })
    t.equal(sha(sourceInStore(video.id) ?? Buffer.alloc(0)), sha(data), 'the stored source is byte-identical')
  })

  t.test('a complete upload the store cannot take is kept past its expiry and stored once there is room', async (t) => {
    // All but 0.5 MiB of the store's disk ('~' never appears in a store key).
    const filler = join(seen(storeDir), 'filler~not-a-key')
    const room = statfsSync(seen(storeDir))
    writeFileSync(filler, Buffer.alloc(room.bavail * room.bsize - MIB / 2))
    const data = randomBytes(2 * MIB)
    const video = await newVideo(data.length)
    const doneAtMs = Date.now()
    t.equal((await patch(video.uploadUrl, 0, data)).status, 204, 'every byte accepted')
    // The origin retries on every sweep (each second with this TTL) and logs each refusal; wait for
    // refusals until the upload's expiry has passed, then for one more sweep.
    const refusals = (): number => origin.output().split('moving the upload into the store failed').length - 1
    await waitFor(() => Date.now() > doneAtMs + UPLOAD_TTL_MS && refusals(), { what: 'the upload expiry passed' })
    const atExpiry = refusals()
    await waitFor(() => refusals() > atExpiry, { what: 'a sweep after the expiry', timeoutMs: 15_000 })
    t.not(await statusOf(video.id), 'queued', 'not in the store yet')
    t.equal(sourceInStore(video.id), null)
    const head = await offsetOf(video.uploadUrl)
    t.equal(head.status, 200, 'the upload was not expired')
    t.equal(head.offset, data.length)

    unlinkSync(filler)
    await waitFor(async () => (await statusOf(video.id)) === 'queued', { what: 'the upload stored and queued' })
    t.equal(sha(sourceInStore(video.id) ?? Buffer.alloc(0)), sha(data), 'the stored source is byte-identical')
  })
})
