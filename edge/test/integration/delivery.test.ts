// The delivery path edge → shield → origin with real processes on 127.0.0.1.
import t from 'tap'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { metric, rawRequest, waitFor } from '../../../shared/testing/index.js'
import { filesUnder, randomBytes, topology, warm, SECRET, type Topology } from './topology.js'

const sha = (b: Buffer | Uint8Array): string => createHash('sha256').update(b).digest('hex')

async function originCount(topo: Topology): Promise<number> {
  return metric(topo.origin!.adminUrl, 'vcdn_origin_requests_total{status="200"}')
}

t.test('delivery through edge → shield → origin', async (t) => {
  const topo = await topology({ shields: 1 })
  t.teardown(() => topo.close())
  const edge = topo.edge
  const shield = topo.shields[0]!

  t.test('a cold object is a MISS at edge and shield, then a HIT at the edge', async (t) => {
    const body = randomBytes(10_000, 2)
    await topo.store.put('v/vid1/720p/seg_00001.m4s', body)
    const path = topo.sign('/v/vid1/720p/seg_00001.m4s')
    const first = await fetch(edge.url + path)
    t.equal(first.status, 200)
    t.equal(first.headers.get('x-cache'), 'MISS')
    t.equal(first.headers.get('x-cache-upstream'), 'MISS')
    t.equal(first.headers.get('content-type'), 'video/iso.segment')
    t.match(first.headers.get('cache-control') ?? '', /immutable/)
    t.ok(first.headers.get('etag'), 'etag forwarded')
    t.equal(sha(Buffer.from(await first.arrayBuffer())), sha(body))
    // The client can have every byte a moment before the fill is renamed into place; a request in
    // that moment joins the fill. Poll until the object is a plain HIT.
    const second = await waitFor(
      async () => {
        const r = await fetch(edge.url + path)
        const bytes = Buffer.from(await r.arrayBuffer())
        t.equal(sha(bytes), sha(body))
        return r.headers.get('x-cache') === 'HIT' ? r : null
      },
      { what: 'a HIT' },
    )
    t.equal(second.headers.get('x-cache'), 'HIT')
    t.ok(Number(second.headers.get('age')) >= 0, 'age header present')
    // the shield on its own: HIT now, and it refuses requests without the tier secret
    const direct = await fetch(`${shield.url}/v/vid1/720p/seg_00001.m4s`, { headers: { 'x-vcdn-tier': SECRET } })
    t.equal(direct.headers.get('x-cache'), 'HIT')
    await direct.arrayBuffer()
    const noSecret = await fetch(`${shield.url}/v/vid1/720p/seg_00001.m4s`)
    t.equal(noSecret.status, 401)
    t.equal(((await noSecret.json()) as { error: { code: string } }).error.code, 'ERR_TIER_AUTH')
    const noSecretOrigin = await fetch(`${topo.originUrl}/v/vid1/720p/seg_00001.m4s`)
    t.equal(noSecretOrigin.status, 401)
    await noSecretOrigin.arrayBuffer()
  })

  t.test('200 concurrent requests for one cold 4 MB object cause exactly one origin request', async (t) => {
    const body = randomBytes(4 * 1024 * 1024, 3)
    await topo.store.put('v/vid2/1080p/seg_00001.m4s', body)
    const before = await originCount(topo)
    const path = topo.sign('/v/vid2/1080p/seg_00001.m4s')
    const results = await Promise.all(
      Array.from({ length: 200 }, async () => {
        const r = await fetch(edge.url + path)
        return { status: r.status, hash: sha(Buffer.from(await r.arrayBuffer())) }
      }),
    )
    t.equal(results.filter((r) => r.status === 200).length, 200, 'all 200 OK')
    t.equal(new Set(results.map((r) => r.hash)).size, 1, 'all bodies byte-identical')
    t.equal(results[0]!.hash, sha(body), 'and equal to the stored object')
    t.equal((await originCount(topo)) - before, 1, 'one origin request')
    t.ok((await metric(edge.adminUrl, 'vcdn_edge_cache_coalesced_total')) >= 1, 'edge counted coalesced waiters')
  })

  t.test('ranges get 206 on a miss and on a hit, 416 when unsatisfiable, 200 when malformed', async (t) => {
    const body = randomBytes(100_000, 4)
    await topo.store.put('v/vid3/480p/seg_00001.m4s', body)
    const path = topo.sign('/v/vid3/480p/seg_00001.m4s')
    const miss = await fetch(edge.url + path, { headers: { range: 'bytes=1000-1999' } })
    t.equal(miss.status, 206)
    t.equal(miss.headers.get('content-range'), 'bytes 1000-1999/100000')
    t.same(Buffer.from(await miss.arrayBuffer()), body.subarray(1000, 2000))
    // the miss answered its 1000 bytes before the fill of all 100 000 was stored: wait for the HIT
    const hit = await waitFor(
      async () => {
        const r = await fetch(edge.url + path, { headers: { range: 'bytes=-10' } })
        t.equal(r.status, 206)
        t.same(Buffer.from(await r.arrayBuffer()), body.subarray(body.length - 10))
        return r.headers.get('x-cache') === 'HIT' ? r : null
      },
      { what: 'a ranged HIT' },
    )
    t.equal(hit.headers.get('x-cache'), 'HIT')
    const open = await fetch(edge.url + path, { headers: { range: 'bytes=99990-' } })
    t.equal(open.status, 206)
    t.same(Buffer.from(await open.arrayBuffer()), body.subarray(99990))
    const unsat = await fetch(edge.url + path, { headers: { range: 'bytes=200000-' } })
    t.equal(unsat.status, 416)
    t.equal(unsat.headers.get('content-range'), 'bytes */100000')
    await unsat.arrayBuffer()
    const malformed = await fetch(edge.url + path, { headers: { range: 'bytes=abc' } })
    t.equal(malformed.status, 200, 'RFC 9110 §14.2: a malformed Range is ignored')
    t.equal((await malformed.arrayBuffer()).byteLength, 100_000)
  })

  t.test('If-None-Match with the current ETag answers 304 without a body', async (t) => {
    await topo.store.put('v/vid4/master.m3u8', Buffer.from('#EXTM3U\n#EXT-X-VERSION:7\n'))
    const path = topo.sign('/v/vid4/master.m3u8')
    const first = await fetch(edge.url + path)
    const etag = first.headers.get('etag')!
    await first.arrayBuffer()
    t.ok(etag)
    const cond = await fetch(edge.url + path, { headers: { 'if-none-match': etag } })
    t.equal(cond.status, 304)
    t.equal(cond.headers.get('etag'), etag)
    t.equal((await cond.arrayBuffer()).byteLength, 0)
  })

  t.test('bad paths get 400, unknown methods 405, and nothing crashes', async (t) => {
    const token = topo.sign('/v/vid1/720p/seg_00001.m4s').split('/')[2]
    const bad = [
      `/t/${token}/v/vid1/../vid2/master.m3u8`,
      `/t/${token}/v/vid1/%2e%2e/vid2/master.m3u8`,
      `/t/${token}/v/vid1/%2E%2e/x`,
      `/t/${token}/v/vid1%2fx/master.m3u8`,
      `/t/${token}/v/vid1/a%00b`,
      `/v/../etc/passwd`,
      `/t/${token}/v/vid1/${'a'.repeat(3000)}`,
    ]
    for (const p of bad) {
      const r = await rawRequest(edge.port, `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`)
      t.equal(r.status, 400, `400 for ${p.slice(0, 60)}`)
      t.match(r.body, /ERR_REQUEST_PATH/)
    }
    // A raw NUL in the request line never reaches the handler: uWebSockets.js's parser drops such a
    // request without answering (its idle timeout closes the socket). It must never be served.
    const nul = await rawRequest(edge.port, `GET /t/${token}/v/vid1/a\0b HTTP/1.1\r\nHost: x\r\n\r\n`, 1000, true)
    t.ok(nul.status === 400 || nul.status === 0, `raw NUL is refused or dropped, never served (got ${nul.status})`)
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const r = await rawRequest(
        edge.port,
        `${method} /t/${token}/v/vid1/720p/seg_00001.m4s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`,
      )
      t.equal(r.status, 405, `405 for ${method}`)
      t.match(r.head.toLowerCase(), /allow: get, head/)
    }
    // A method outside HTTP's registry never reaches the handler: uWebSockets.js's parser closes
    // the connection without answering. Refused, not served, and the server lives on.
    const brew = await rawRequest(
      edge.port,
      `BREW /t/${token}/v/vid1/720p/seg_00001.m4s HTTP/1.1\r\nHost: x\r\n\r\n`,
      1000,
      true,
    )
    t.ok(
      brew.status === 405 || brew.status === 501 || Number.isNaN(brew.status) || brew.status === 0,
      'BREW is refused',
    )
    t.notOk(brew.head.startsWith('HTTP/1.1 2'), 'BREW is never served')
    const health = await fetch(`${edge.url}/healthz`)
    t.equal(health.status, 200, 'still alive')
    await health.arrayBuffer()
  })

  t.test('the admin listener: health, readiness, Prometheus metrics, coded refusals', async (t) => {
    for (const node of [edge, shield, topo.origin!]) {
      const health = await fetch(`${node.adminUrl}/healthz`)
      t.equal(health.status, 200, `${node.tier} /healthz`)
      t.same(await health.json(), { ok: true })
      const ready = await fetch(`${node.adminUrl}/readyz`)
      t.equal(ready.status, 200, `${node.tier} /readyz`)
      t.same(await ready.json(), { ready: true })
      const metrics = await fetch(`${node.adminUrl}/metrics`)
      t.equal(metrics.status, 200)
      t.match(metrics.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
      const text = await metrics.text()
      t.match(text, new RegExp(`^vcdn_${node.tier}_process_resident_memory_bytes \\d+`, 'm'), 'process metrics')
      const missing = await fetch(`${node.adminUrl}/nope`)
      t.equal(missing.status, 404)
      t.equal(((await missing.json()) as { error: { code: string } }).error.code, 'ERR_NOT_FOUND')
    }
    for (const node of [edge, shield]) {
      const text = await (await fetch(`${node.adminUrl}/metrics`)).text()
      for (const name of [
        'cache_hits_total',
        'cache_misses_total',
        'cache_fills_total',
        'cache_store_errors_total',
        'upstream_requests_total',
      ])
        t.match(text, new RegExp(`^vcdn_${node.tier}_${name} \\d+`, 'm'), `${node.tier} exports ${name}`)
      for (const body of ['not json', '{"prefix":"v/no-leading-slash/"}', '{}']) {
        const r = await fetch(`${node.adminUrl}/purge`, {
          method: 'POST',
          headers: { 'x-vcdn-tier': SECRET, 'content-type': 'application/json' },
          body,
        })
        t.equal(r.status, 400, `${node.tier} refuses purge body ${body}`)
        t.equal(((await r.json()) as { error: { code: string } }).error.code, 'ERR_PURGE_BODY')
      }
    }
  })

  t.test('purge of a prefix removes objects from memory and disk on every node it is sent to', async (t) => {
    const body = randomBytes(50_000, 5)
    await topo.store.put('v/vid5/720p/seg_00001.m4s', body)
    await topo.store.put('v/vid5/720p/seg_00002.m4s', body)
    await topo.store.put('v/vid6/720p/seg_00001.m4s', body)
    for (const p of ['/v/vid5/720p/seg_00001.m4s', '/v/vid5/720p/seg_00002.m4s', '/v/vid6/720p/seg_00001.m4s']) {
      await warm(edge.url + topo.sign(p))
      await warm(shield.url + p, { 'x-vcdn-tier': SECRET })
    }
    const edgeFiles = filesUnder(join(topo.dir, 'edge', 'objects')).length
    const shieldFiles = filesUnder(join(topo.dir, 'shield0', 'objects')).length
    for (const node of [edge, shield]) {
      const unauth = await fetch(`${node.adminUrl}/purge`, {
        method: 'POST',
        body: JSON.stringify({ prefix: '/v/vid5/' }),
      })
      t.equal(unauth.status, 401, 'purge needs the tier secret')
      await unauth.arrayBuffer()
      const r = await fetch(`${node.adminUrl}/purge`, {
        method: 'POST',
        headers: { 'x-vcdn-tier': SECRET, 'content-type': 'application/json' },
        body: JSON.stringify({ prefix: '/v/vid5/' }),
      })
      t.equal(r.status, 200)
      t.equal(((await r.json()) as { removed: number }).removed, 2, `${node.tier} removed both objects`)
    }
    t.equal(filesUnder(join(topo.dir, 'edge', 'objects')).length, edgeFiles - 2, 'edge files removed from disk')
    t.equal(filesUnder(join(topo.dir, 'shield0', 'objects')).length, shieldFiles - 2, 'shield files removed')
    const before = await originCount(topo)
    const again = await fetch(edge.url + topo.sign('/v/vid5/720p/seg_00001.m4s'))
    t.equal(again.headers.get('x-cache'), 'MISS', 'purged object is fetched again')
    t.equal(again.headers.get('x-cache-upstream'), 'MISS')
    await again.arrayBuffer()
    t.equal((await originCount(topo)) - before, 1)
    const kept = await fetch(edge.url + topo.sign('/v/vid6/720p/seg_00001.m4s'))
    t.equal(kept.headers.get('x-cache'), 'HIT', 'other prefixes stay cached')
    await kept.arrayBuffer()
  })

  t.test('a restart with a warm disk cache serves HITs without asking upstream', async (t) => {
    const body = randomBytes(20 * 1024 * 1024, 6) // larger than the memory object limit: disk only
    await topo.store.put('v/vid7/2160p/seg_00001.m4s', body)
    const path = topo.sign('/v/vid7/2160p/seg_00001.m4s')
    const first = await fetch(edge.url + path)
    t.equal(sha(Buffer.from(await first.arrayBuffer())), sha(body))
    await warm(edge.url + path)
    t.equal(await topo.edge.stop(), 0, 'SIGTERM drains and exits 0')
    const before = await originCount(topo)
    const shieldUpstreamBefore = await metric(shield.adminUrl, 'vcdn_shield_upstream_requests_total')
    const edge2 = await topo.startEdge()
    const again = await fetch(edge2.url + path)
    t.equal(again.headers.get('x-cache'), 'HIT')
    t.equal(sha(Buffer.from(await again.arrayBuffer())), sha(body))
    t.equal((await originCount(topo)) - before, 0, 'no origin request')
    t.equal((await metric(shield.adminUrl, 'vcdn_shield_upstream_requests_total')) - shieldUpstreamBefore, 0)
    t.equal(await metric(edge2.adminUrl, 'vcdn_edge_upstream_requests_total'), 0, 'the edge asked nobody')
  })
})
