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
  const uploads = new UploadManager({
    dir: join(tmp.dir, 'uploads'),
    meta,
    queue,
    store,
    log: pino({ level: 'silent' }),
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
