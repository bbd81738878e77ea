// Fault tests: a scripted upstream behind the shields misbehaves on purpose.
import t from 'tap'
import { createHash } from 'node:crypto'
import { get } from 'node:http'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { metric, ScriptedOrigin, waitFor } from '../../../shared/testing/index.js'
import { bytesUnder, randomBytes, topology, SECRET } from './topology.js'

const sha = (b: Buffer | Uint8Array): string => createHash('sha256').update(b).digest('hex')

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

/** GET through node:http so a test can watch headers and the first bytes arrive. */
function streamGet(url: string): Promise<{
  status: number
  headers: Record<string, string | string[] | undefined>
  firstChunk: Promise<Buffer>
  body: Promise<Buffer>
}> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      const chunks: Buffer[] = []
      let gotFirst: (b: Buffer) => void
      const firstChunk = new Promise<Buffer>((r) => (gotFirst = r))
      const body = new Promise<Buffer>((r, j) => {
        res.on('data', (c: Buffer) => {
          if (chunks.length === 0) gotFirst(c)
          chunks.push(c)
        })
        res.on('end', () => r(Buffer.concat(chunks)))
        res.on('error', j)
        res.on('aborted', () => j(new Error('aborted')))
      })
      body.catch(() => undefined)
      resolve({ status: res.statusCode ?? 0, headers: res.headers, firstChunk, body })
    }).on('error', reject)
  })
}

t.test('with a scripted origin behind the shields', async (t) => {
  const origin = new ScriptedOrigin()
  await origin.listen()
  t.teardown(() => origin.close())
  const topo = await topology({
    shields: 2,
    originUrl: origin.url,
    shieldExtra: { upstream: { headersTimeoutMs: 1500 } },
    edge: { upstream: { headersTimeoutMs: 4000 } },
  })
  t.teardown(() => topo.close())
  const edge = topo.edge

  t.test('waiters get headers and the first chunk while the origin is still sending', async (t) => {
    const gate = deferred()
    const first = randomBytes(64 * 1024, 7)
    const rest = randomBytes(256 * 1024, 8)
    origin.routes.set('/v/slow/720p/seg_00001.m4s', async (_req, res) => {
      // Cacheable as the origin's segments are: a late joiner may share a fresh answer (RFC 9111 §4).
      res.writeHead(200, {
        'content-type': 'video/iso.segment',
        'content-length': String(first.length + rest.length),
        'cache-control': 'public, max-age=60',
      })
      res.write(first)
      await gate.promise
      res.end(rest)
    })
    const path = topo.sign('/v/slow/720p/seg_00001.m4s')
    const clients = await Promise.all(Array.from({ length: 5 }, () => streamGet(edge.url + path)))
    for (const c of clients) t.equal(c.status, 200, 'headers arrived before the origin finished')
    const firsts = await Promise.all(clients.map((c) => c.firstChunk))
    for (const f of firsts) t.same(f, first.subarray(0, f.length), 'first bytes arrived before the origin finished')
    // a late joiner replays what is already there, then follows live
    const late = await streamGet(edge.url + path)
    t.equal(late.status, 200)
    gate.resolve()
    const bodies = await Promise.all([...clients, late].map((c) => c.body))
    for (const b of bodies) t.equal(sha(b), sha(Buffer.concat([first, rest])))
    t.equal(origin.count('/v/slow/720p/seg_00001.m4s'), 1, 'one origin request')
  })

  t.test('stale-if-error serves the cached copy while the origin is failing', async (t) => {
    const body = Buffer.from('#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-ENDLIST\n')
    origin.static('/v/sie/720p/index.m3u8', body, {
      'content-type': 'application/vnd.apple.mpegurl',
      'cache-control': 'max-age=0, stale-if-error=600',
      etag: '"v1"',
    })
    const path = topo.sign('/v/sie/720p/index.m3u8')
    const first = await fetch(edge.url + path)
    t.equal(first.status, 200)
    await first.arrayBuffer()
    origin.routes.set('/v/sie/720p/index.m3u8', (_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('down')
    })
    const stale = await fetch(edge.url + path)
    t.equal(stale.status, 200, 'stale copy instead of the error')
    t.same(Buffer.from(await stale.arrayBuffer()), body)
    t.ok([stale.headers.get('x-cache'), stale.headers.get('x-cache-upstream')].includes('STALE'), 'marked STALE')
  })

  t.test('with nothing cached a dead origin gives a coded 502 and a silent one a coded 504', async (t) => {
    origin.routes.set('/v/dead/master.m3u8', (req) => {
      req.socket.destroy()
    })
    const r = await fetch(edge.url + topo.sign('/v/dead/master.m3u8'))
    t.equal(r.status, 502)
    t.match(((await r.json()) as { error: { code: string } }).error.code, /^ERR_UPSTREAM_/)
    origin.routes.set('/v/silent/master.m3u8', () => new Promise<void>(() => undefined))
    const s = await fetch(edge.url + topo.sign('/v/silent/master.m3u8'))
    t.equal(s.status, 504)
    t.equal(((await s.json()) as { error: { code: string } }).error.code, 'ERR_UPSTREAM_TIMEOUT')
  })

  t.test(
    'an upstream that lies about Content-Length or closes early aborts the client and caches nothing',
    async (t) => {
      for (const [name, send] of [
        [
          'short',
          (res: import('node:http').ServerResponse) => {
            res.writeHead(200, { 'content-length': '100000', 'content-type': 'video/iso.segment' })
            res.write(randomBytes(40_000, 9))
            setImmediate(() => res.destroy())
          },
        ],
        [
          'early-close',
          (res: import('node:http').ServerResponse) => {
            res.writeHead(200, { 'content-type': 'video/iso.segment' })
            res.write(randomBytes(40_000, 10))
            setImmediate(() => res.socket?.destroy())
          },
        ],
      ] as const) {
        const p = `/v/liar-${name}/720p/seg_00001.m4s`
        origin.routes.set(p, (_req, res) => send(res))
        const path = topo.sign(p)
        const r = await streamGet(edge.url + path).catch((e: Error) => e)
        if (!(r instanceof Error)) {
          await t.rejects(r.body, `${name}: client body is cut off, never a clean end`)
        } else t.pass(`${name}: request failed`)
        const body = randomBytes(5000, 11)
        origin.static(p, body, { 'content-type': 'video/iso.segment' })
        const again = await fetch(edge.url + path)
        t.equal(again.status, 200)
        t.equal(again.headers.get('x-cache'), 'MISS', `${name}: nothing was cached`)
        t.same(Buffer.from(await again.arrayBuffer()), body)
      }
    },
  )

  t.test('one of two shields killed: requests keep succeeding through the other', async (t) => {
    for (let i = 0; i < 20; i++)
      origin.static(`/v/ha/720p/seg_${String(i).padStart(5, '0')}.m4s`, randomBytes(2000, 100 + i))
    await topo.shields[0]!.kill9()
    let ok = 0
    for (let i = 0; i < 20; i++) {
      const r = await fetch(edge.url + topo.sign(`/v/ha/720p/seg_${String(i).padStart(5, '0')}.m4s`))
      if (r.status === 200) ok++
      await r.arrayBuffer()
    }
    t.equal(ok, 20, 'every request succeeded')
    await topo.startShield(0)
  })

  t.test('with every shield down the edge goes to the origin, and back to the shields when they return', async (t) => {
    const pathOf = (i: number): string => `/v/fallback/720p/seg_${String(i).padStart(5, '0')}.m4s`
    const bodyOf = (i: number): Buffer => randomBytes(3000, 300 + i)
    for (let i = 0; i < 40; i++) origin.static(pathOf(i), bodyOf(i), { 'content-type': 'video/iso.segment' })
    await Promise.all(topo.shields.map((s) => s.kill9()))
    for (const i of [0, 1]) {
      const r = await fetch(edge.url + topo.sign(pathOf(i)))
      t.equal(r.status, 200, `${pathOf(i)} through the origin`)
      t.equal(r.headers.get('x-cache'), 'MISS')
      t.equal(sha(Buffer.from(await r.arrayBuffer())), sha(bodyOf(i)))
      t.equal(origin.count(pathOf(i)), 1, 'the origin answered the edge itself')
    }
    await topo.startShield(0)
    await topo.startShield(1)
    // The active probe marks the shields up again; from then on the edge's misses go through them
    // (a shield's answer carries its own x-cache, forwarded as x-cache-upstream). A new object each try.
    let next = 2
    const viaShield = await waitFor(
      async () => {
        const i = next++
        if (i >= 40) throw new Error('no miss went through a shield')
        const r = await fetch(edge.url + topo.sign(pathOf(i)))
        const body = Buffer.from(await r.arrayBuffer())
        return r.status === 200 && r.headers.get('x-cache-upstream') === 'MISS' ? { i, body } : null
      },
      { what: 'a miss answered through a shield again', timeoutMs: 15_000 },
    )
    t.equal(sha(viaShield.body), sha(bodyOf(viaShield.i)))
  })

  t.test('kill -9 of a shield during a fill: after restart the partial object is never served', async (t) => {
    const gate = deferred()
    const full = randomBytes(300_000, 12)
    const p = '/v/crash/720p/seg_00001.m4s'
    origin.routes.set(p, async (_req, res) => {
      res.writeHead(200, { 'content-type': 'video/iso.segment', 'content-length': String(full.length) })
      res.write(full.subarray(0, 100_000))
      await gate.promise
      res.end(full.subarray(100_000))
    })
    const shield = topo.shields[1]!
    // a client fetches through the shield directly; its body is cut when the shield dies
    const fill = (async (): Promise<string> => {
      try {
        const r = await fetch(`${shield.url}${p}`, { headers: { 'x-vcdn-tier': SECRET } })
        await r.arrayBuffer()
        return 'complete'
      } catch {
        return 'cut'
      }
    })()
    await waitFor(() => origin.count(p) >= 1, { what: 'the fill to start' })
    await shield.kill9()
    t.equal(await fill, 'cut', 'the client saw a cut body, not a clean end')
    gate.resolve()
    origin.static(p, full, { 'content-type': 'video/iso.segment' })
    const restarted = await topo.startShield(1)
    const r = await fetch(`${restarted.url}${p}`, { headers: { 'x-vcdn-tier': SECRET } })
    t.equal(r.status, 200)
    t.equal(r.headers.get('x-cache'), 'MISS', 'the partial object was not kept')
    t.equal(sha(Buffer.from(await r.arrayBuffer())), sha(full), 'the complete object is served')
    // the new fill renames its own temp file a moment after the client has the last byte
    await waitFor(() => readdirSync(join(topo.dir, 'shield1', 'tmp')).length === 0, { what: 'an empty tmp/' })
    t.same(readdirSync(join(topo.dir, 'shield1', 'tmp')), [], 'no temp files left')
  })

  t.test('disk usage stays under maxBytes while 3× that volume streams through', async (t) => {
    const small = await topology({
      shields: 1,
      originUrl: origin.url,
      shieldCache: { maxBytes: 8 * 1024 * 1024, memoryMaxBytes: 1024 * 1024 },
      edgeCache: { maxBytes: 8 * 1024 * 1024, memoryMaxBytes: 1024 * 1024 },
    })
    t.teardown(() => small.close())
    let peakEdge = 0
    let peakShield = 0
    for (let i = 0; i < 24; i++) {
      const p = `/v/fill/1080p/seg_${String(i).padStart(5, '0')}.m4s`
      origin.static(p, randomBytes(1024 * 1024, 200 + i), { 'content-type': 'video/iso.segment' })
      const r = await fetch(small.edge.url + small.sign(p))
      t.equal(r.status, 200)
      await r.arrayBuffer()
      peakEdge = Math.max(peakEdge, bytesUnder(join(small.dir, 'edge', 'objects')))
      peakShield = Math.max(peakShield, bytesUnder(join(small.dir, 'shield0', 'objects')))
    }
    t.ok(peakEdge <= 8 * 1024 * 1024, `edge disk peak ${peakEdge} ≤ maxBytes`)
    t.ok(peakShield <= 8 * 1024 * 1024, `shield disk peak ${peakShield} ≤ maxBytes`)
    t.ok((await metric(small.edge.adminUrl, 'vcdn_edge_cache_evictions_total')) > 0, 'the edge evicted')
  })
})
