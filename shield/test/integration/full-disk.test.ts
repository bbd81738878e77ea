// A shield whose cache disk fills up (a 4 MiB tmpfs mounted over its cache dir in a private mount
// namespace, so nothing outside the shield's process sees it): a fill the disk refuses is still
// served whole to every reader, nothing half-written is stored or left behind, the shield keeps
// serving what it stored before, and the refusal is counted.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, statfsSync } from 'node:fs'
import { join } from 'node:path'
import { metric, ScriptedOrigin, smallDisksWrap, startTier, tempDir, waitFor } from '../../../shared/testing/index.js'

const SECRET = 'full-disk-tier-secret-0123456789abcdef'
const MIB = 1024 * 1024
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

t.test('a shield whose cache disk is full', async (t) => {
  const tmp = tempDir('vcdn-full-disk-')
  t.teardown(tmp.remove)
  const cacheDir = join(tmp.dir, 'cache')
  mkdirSync(cacheDir)
  const origin = new ScriptedOrigin()
  await origin.listen()
  t.teardown(() => origin.close())
  const bodies = { first: randomBytes(2.5 * MIB), second: randomBytes(2.5 * MIB) }
  for (const [name, body] of Object.entries(bodies)) {
    origin.routes.set(`/v/full/720p/${name}.m4s`, (_req, res) => {
      res
        .writeHead(200, {
          'content-type': 'video/iso.segment',
          'content-length': String(body.length),
          'cache-control': 'public, max-age=31536000, immutable',
        })
        .end(body)
    })
  }
  const shield = await startTier(
    'shield',
    // maxBytes far above the 4 MiB the disk really has: eviction never makes room, the disk refuses.
    { tierSecret: SECRET, upstreams: [origin.url], cache: { dir: cacheDir, maxBytes: 256 * MIB }, accessLog: false },
    { dir: tmp.dir, wrap: smallDisksWrap([{ dir: cacheDir, sizeMiB: 4 }]) },
  )
  t.teardown(() => shield.stop())
  // The shield's view of its cache dir (its mount namespace) through /proc.
  const shieldCacheDir = `/proc/${shield.proc.pid}/root${cacheDir}`
  const get = async (name: string): Promise<{ status: number; cache: string | null; body: Buffer }> => {
    const r = await fetch(`${shield.url}/v/full/720p/${name}.m4s`, { headers: { 'x-vcdn-tier': SECRET } })
    return { status: r.status, cache: r.headers.get('x-cache'), body: Buffer.from(await r.arrayBuffer()) }
  }

  t.test('an object that fits is stored and hit', async (t) => {
    const miss = await get('first')
    t.equal(miss.status, 200)
    t.equal(sha(miss.body), sha(bodies.first))
    const hit = await waitFor(
      async () => {
        const r = await get('first')
        return r.cache === 'HIT' ? r : null
      },
      { what: 'the first object stored' },
    )
    t.equal(sha(hit.body), sha(bodies.first))
    t.equal(origin.count('/v/full/720p/first.m4s'), 1)
  })

  t.test('an object the disk refuses mid-fill reaches every reader whole and is not stored', async (t) => {
    const free = statfsSync(shieldCacheDir)
    t.ok(free.bavail * free.bsize < bodies.second.length, 'the disk has less room than the second object')
    const readers = await Promise.all([get('second'), get('second'), get('second')])
    for (const r of readers) {
      t.equal(r.status, 200)
      t.equal(r.body.length, bodies.second.length)
      t.equal(sha(r.body), sha(bodies.second), 'byte-identical to the origin')
    }
    t.equal(origin.count('/v/full/720p/second.m4s'), 1, 'one fill for the three readers')
    t.ok((await metric(shield.adminUrl, 'vcdn_shield_cache_store_errors_total')) >= 1, 'the refusal is counted')
    await waitFor(() => readdirSync(join(shieldCacheDir, 'tmp')).length === 0, { what: 'the temp file removed' })
    const again = await get('second')
    t.equal(again.cache, 'MISS', 'not stored: fetched again')
    t.equal(sha(again.body), sha(bodies.second))
    t.equal(origin.count('/v/full/720p/second.m4s'), 2)
  })

  t.test('what was stored before is still served from the cache', async (t) => {
    const hit = await get('first')
    t.equal(hit.cache, 'HIT')
    t.equal(sha(hit.body), sha(bodies.first))
    t.equal(origin.count('/v/full/720p/first.m4s'), 1)
    const health = await fetch(`${shield.adminUrl}/healthz`)
    t.equal(health.status, 200)
  })
})
