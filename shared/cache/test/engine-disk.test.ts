// Disk tier: eviction within budget, crash-safe reconciliation on open, purge, and readers that
// keep reading objects removed under them.
import { createHash } from 'node:crypto'
import { readdir, stat, truncate, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { ControlledBody, FakeSink, bytes, harness, ok, until } from './fixtures/harness.js'

async function objectFiles(dir: string): Promise<Array<{ path: string; size: number }>> {
  const out: Array<{ path: string; size: number }> = []
  const root = join(dir, 'objects')
  for (const sub of await readdir(root)) {
    for (const name of await readdir(join(root, sub))) {
      const path = join(root, sub, name)
      // background eviction may unlink a file between readdir and stat: it is simply gone
      const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null
        throw err
      })
      if (st !== null) out.push({ path, size: st.size })
    }
  }
  return out
}

async function objectBytes(dir: string): Promise<number> {
  return (await objectFiles(dir)).reduce((n, f) => n + f.size, 0)
}

async function fileOf(dir: string, key: string): Promise<string> {
  const hash = createHash('sha256').update(key).digest('hex')
  const files = (await objectFiles(dir)).filter((f) => f.path.includes(hash))
  if (files.length !== 1 || files[0] === undefined)
    throw new Error(`expected one file for ${key}, found ${files.length}`)
  return files[0].path
}

void t.test(
  'disk usage stays within maxBytes while three times maxBytes of distinct objects stream through',
  async (t) => {
    const maxBytes = 1_000_000
    const h = await harness(t, { maxBytes, memoryMaxBytes: 200_000 })
    const size = 90_000
    h.upstream.handler = (key) => ok(bytes(size, key.length + Number(key.replace(/\D/g, ''))), {}, 200, 16_384)
    let peak = 0
    for (let i = 0; i < 36; i += 3) {
      const batch = [0, 1, 2].map((j) => h.get(`/v/e/seg_${i + j}.m4s`))
      // Measure while the fills are in progress, too.
      peak = Math.max(peak, await objectBytes(h.dir))
      for (const { sink } of await Promise.all(batch)) t.equal(sink.received, size)
      peak = Math.max(peak, await objectBytes(h.dir))
    }
    t.ok(peak <= maxBytes, `peak ${peak} ≤ ${maxBytes}`)
    const c = h.engine.counters
    t.ok(c.evictions > 0)
    t.equal(c.evictedBytes, c.evictions * size)
    t.equal(c.diskBytes, await objectBytes(h.dir), 'diskBytes matches the files')
    t.equal(c.objects, (await objectFiles(h.dir)).length)
    t.ok(c.diskBytes <= maxBytes * 0.95)
  },
)

void t.test('eviction is least-recently-used by access time', async (t) => {
  const h = await harness(t, { maxBytes: 500_000, memoryMaxBytes: 100_000, memoryObjectMaxBytes: 1 })
  h.upstream.handler = () => ok(bytes(100_000))
  for (let i = 0; i < 4; i++) {
    await h.get(`/v/l/${i}.m4s`)
    h.clock.now += 1000
  }
  // Touch the oldest; the batched access time is flushed before eviction runs.
  t.equal((await h.get('/v/l/0.m4s')).result.outcome, 'HIT')
  h.clock.now += 1000
  await h.get('/v/l/4.m4s')
  await h.get('/v/l/5.m4s')
  await until(() => h.engine.counters.evictions >= 2, 'eviction')
  t.ok(h.engine.has('/v/l/0.m4s'), 'recently used object survives')
  t.notOk(h.engine.has('/v/l/1.m4s'), 'least recently used object is evicted')
})

void t.test('open() removes temp files, orphan files, rows without files and truncated objects', async (t) => {
  const h = await harness(t)
  const keys = ['/v/r/good.m4s', '/v/r/missing.m4s', '/v/r/truncated.m4s']
  h.upstream.handler = () => ok(bytes(10_000))
  for (const key of keys) await h.get(key)
  await h.engine.close()
  await writeFile(join(h.dir, 'tmp', 'half-written'), 'xx')
  const orphan = join(h.dir, 'objects', 'ab', 'ab'.padEnd(64, '0') + '.deadbeef')
  await writeFile(orphan, 'orphan')
  await unlink(await fileOf(h.dir, '/v/r/missing.m4s'))
  const truncated = await fileOf(h.dir, '/v/r/truncated.m4s')
  await truncate(truncated, 5_000)
  const engine = await h.open()
  t.same(await readdir(join(h.dir, 'tmp')), [], 'tmp/ is empty')
  const files = (await objectFiles(h.dir)).map((f) => f.path)
  t.notOk(files.includes(orphan), 'orphan removed')
  t.notOk(files.includes(truncated), 'truncated object removed')
  t.equal(files.length, 1)
  t.ok(engine.has('/v/r/good.m4s'))
  t.notOk(engine.has('/v/r/missing.m4s'))
  t.notOk(engine.has('/v/r/truncated.m4s'))
  t.match(engine.counters, { objects: 1, diskBytes: 10_000 })
  t.equal((await h.get('/v/r/good.m4s')).result.outcome, 'HIT')
  t.equal((await h.get('/v/r/truncated.m4s')).result.outcome, 'MISS')
})

void t.test('purge by key and by prefix removes objects from memory and disk', async (t) => {
  const h = await harness(t)
  h.upstream.handler = (key) => ok(bytes(2000, key.length))
  const keys = [
    '/v/abc/master.m3u8',
    '/v/abc/720p/seg_1.m4s',
    '/v/abc/720p/seg_2.m4s',
    '/v/abd/master.m3u8',
    '/v/ab/x.m4s',
  ]
  for (const key of keys) await h.get(key)
  t.same(await h.engine.purge({ key: '/v/abd/master.m3u8' }), { removed: 1 })
  t.notOk(h.engine.has('/v/abd/master.m3u8'))
  t.same(await h.engine.purge({ prefix: '/v/abc/' }), { removed: 3 })
  for (const key of keys.slice(0, 3)) t.notOk(h.engine.has(key), key)
  t.ok(h.engine.has('/v/ab/x.m4s'), 'a key outside the prefix stays')
  t.equal((await objectFiles(h.dir)).length, 1)
  t.match(h.engine.counters, { purged: 4, objects: 1, diskBytes: 2000 })
  const again = await h.get('/v/abc/master.m3u8')
  t.equal(again.result.outcome, 'MISS', 'memory copy is gone too')
  t.same(await h.engine.purge({ key: '/v/none' }), { removed: 0 })
})

void t.test('a purge during a fill prevents its insertion while its readers finish', async (t) => {
  for (const target of [{ key: '/v/p/seg.m4s' }, { prefix: '/v/p/' }]) {
    const h = await harness(t)
    const source = bytes(100_000, 21)
    const body = new ControlledBody()
    h.upstream.handler = () => ({ status: 200, headers: { 'content-length': String(source.length) }, body })
    const sink = new FakeSink()
    const p = h.engine.serve({ method: 'GET', key: '/v/p/seg.m4s', headers: {} }, sink)
    body.push(source.subarray(0, 10_000))
    await sink.firstChunk.promise
    await h.engine.purge(target)
    body.push(source.subarray(10_000))
    body.end()
    await p
    t.ok(sink.body.equals(source), 'the current reader finishes')
    t.notOk(h.engine.has('/v/p/seg.m4s'), 'the purged fill is not inserted')
    t.equal((await objectFiles(h.dir)).length, 0)
    h.upstream.handler = () => ok(source)
    t.equal((await h.get('/v/p/seg.m4s')).result.outcome, 'MISS')
    t.equal(h.upstream.calls.length, 2)
  }
})

void t.test(
  'an object being read from disk stays fully readable when purged or evicted under its reader',
  async (t) => {
    for (const removal of ['purge', 'evict'] as const) {
      const h = await harness(t, { maxBytes: 3_000_000, memoryObjectMaxBytes: 1000, memoryMaxBytes: 100_000 })
      const source = bytes(1_000_000, 22)
      h.upstream.handler = (key) => ok(key === '/v/x/big.mp4' ? source : bytes(1_000_000, 23))
      await h.get('/v/x/big.mp4')
      const sink = new FakeSink()
      sink.pause()
      const p = h.engine.serve({ method: 'GET', key: '/v/x/big.mp4', headers: {} }, sink)
      await sink.firstChunk.promise
      if (removal === 'purge') {
        await h.engine.purge({ key: '/v/x/big.mp4' })
      } else {
        h.clock.now += 1000
        await h.get('/v/x/other1.mp4')
        await h.get('/v/x/other2.mp4')
        await until(() => h.engine.counters.evictions > 0, 'eviction')
      }
      t.notOk(h.engine.has('/v/x/big.mp4'), `${removal}: removed from the index`)
      sink.release()
      const r = await p
      t.equal(r.outcome, 'HIT')
      t.ok(sink.isEnded && sink.body.equals(source), `${removal}: the reader got every byte`)
    }
  },
)
