// Upload storage on a fake clock: abandoned uploads expire; completed ones reach the store.
import t, { type Test } from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { FsStore } from '../../shared/store/index.js'
import { tempDir } from '../../shared/testing/index.js'
import { MetadataDb, openDb } from '../src/db.js'
import { SqliteJobQueue } from '../src/job-queue.js'
import { UploadManager } from '../src/uploads.js'
import { VideoLifecycle } from '../src/videos.js'

async function* once(b: Buffer): AsyncIterable<Uint8Array> {
  yield b
}

async function* cutAfter(b: Buffer): AsyncIterable<Uint8Array> {
  yield b
  throw new Error('client went away')
}

function setup(t: Test) {
  const tmp = tempDir('vcdn-uploads-')
  t.teardown(tmp.remove)
  let nowMs = 1_000_000
  const meta = new MetadataDb(openDb(join(tmp.dir, 'meta.db')))
  t.teardown(() => meta.close())
  const queue = new SqliteJobQueue({ db: meta.db, now: () => nowMs })
  const store = new FsStore({ dir: join(tmp.dir, 'store') })
  const log = pino({ level: 'silent' })
  const videos = new VideoLifecycle({ meta, bus: queue, log, now: () => nowMs })
  const uploads = new UploadManager({
    dir: join(tmp.dir, 'uploads'),
    meta,
    videos,
    store,
    log,
    now: () => nowMs,
    ttlMs: 60_000,
    maxBytes: 1000,
  })
  meta.createVideo({ id: 'vid0000000000000', owner: 'alice', title: '', nowMs })
  return { tmp, meta, queue, store, uploads, advance: (ms: number) => void (nowMs += ms) }
}

t.test('an abandoned upload is removed after its TTL; a touched one lives on', async (t) => {
  const { tmp, uploads, advance } = setup(t)
  await uploads.init()
  const u = await uploads.create('vid0000000000000', 'alice', 100, '')
  const file = join(tmp.dir, 'uploads', u.id)
  t.ok(existsSync(file))
  advance(59_000)
  t.equal(await uploads.sweep(), 0)
  await uploads.append(u.id, 0, once(Buffer.alloc(10)), { declaredLength: null, checksum: null })
  advance(59_000)
  t.equal(await uploads.sweep(), 0, 'a PATCH extends the expiry')
  advance(1000)
  t.equal(await uploads.sweep(), 1)
  t.notOk(existsSync(file))
  t.equal(uploads.get(u.id), null)
})

t.test(
  'a cut body keeps the bytes received; the last byte moves the file into the store and queues a job',
  async (t) => {
    const { uploads, store, queue, meta } = setup(t)
    await uploads.init()
    const u = await uploads.create('vid0000000000000', 'alice', 20, '')
    await t.rejects(
      uploads.append(u.id, 0, cutAfter(Buffer.alloc(7, 1)), { declaredLength: null, checksum: null }),
      /went away/,
    )
    t.equal(uploads.get(u.id)?.offset, 7)
    await t.rejects(uploads.append(u.id, 0, once(Buffer.alloc(1)), { declaredLength: null, checksum: null }), {
      code: 'ERR_UPLOAD_OFFSET',
    })
    await uploads.append(u.id, 7, once(Buffer.alloc(13, 2)), { declaredLength: null, checksum: null })
    await uploads.idle()
    const info = await store.head('sources/vid0000000000000/source')
    t.equal(info?.size, 20)
    t.equal(meta.getVideo('vid0000000000000')?.status, 'queued')
    t.equal((await queue.claim('w', 1000))?.videoId, 'vid0000000000000')
    t.notOk(uploads.get(u.id)?.completedAtMs === null)
  },
)

t.test('a deferred length is set by a PATCH and bounded by maxBytes', async (t) => {
  const { uploads } = setup(t)
  await uploads.init()
  const u = await uploads.create('vid0000000000000', 'alice', null, '')
  await t.rejects(uploads.append(u.id, 0, once(Buffer.alloc(1)), { declaredLength: 5000, checksum: null }), {
    code: 'ERR_UPLOAD_TOO_LARGE',
  })
  await uploads.append(u.id, 0, once(Buffer.alloc(4)), { declaredLength: 8, checksum: null })
  t.equal(uploads.get(u.id)?.length, 8)
  await t.rejects(uploads.create('vid0000000000000', 'alice', 1001, ''), { code: 'ERR_UPLOAD_TOO_LARGE' })
})

t.test('a PATCH with more bytes than the upload may hold is refused whole and never finalized', async (t) => {
  const { uploads, store, meta } = setup(t)
  await uploads.init()
  const fixed = await uploads.create('vid0000000000000', 'alice', 20, '')
  await uploads.append(fixed.id, 0, once(Buffer.alloc(5, 1)), { declaredLength: null, checksum: null })
  await t.rejects(uploads.append(fixed.id, 5, once(Buffer.alloc(30, 2)), { declaredLength: null, checksum: null }), {
    code: 'ERR_UPLOAD_TOO_LARGE',
  })
  t.equal(uploads.get(fixed.id)?.offset, 5, 'the refused PATCH kept nothing')
  await uploads.sweep()
  await uploads.idle()
  t.equal(await store.head('sources/vid0000000000000/source'), null, 'a sweep does not finalize it')
  t.equal(meta.getVideo('vid0000000000000')?.status, 'uploading')

  const deferred = await uploads.create('vid0000000000000', 'alice', null, '')
  await t.rejects(uploads.append(deferred.id, 0, once(Buffer.alloc(1500)), { declaredLength: null, checksum: null }), {
    code: 'ERR_UPLOAD_TOO_LARGE',
  })
  t.equal(uploads.get(deferred.id)?.offset, 0, 'nothing past maxBytes is kept')
  await t.rejects(uploads.append(deferred.id, 0, once(Buffer.alloc(30)), { declaredLength: 20, checksum: null }), {
    code: 'ERR_UPLOAD_TOO_LARGE',
  })
  t.equal(uploads.get(deferred.id)?.length, null, 'a refused PATCH does not fix the deferred length')
  await uploads.append(deferred.id, 0, once(Buffer.alloc(20, 4)), { declaredLength: 20, checksum: null })
  await uploads.idle()
  t.equal((await store.head('sources/vid0000000000000/source'))?.size, 20)
})
