// CORS at the edge (Fetch standard, CORS protocol): a website's own player on another origin reads
// media and the coded errors it meets, and preflights are answered without going upstream.
import t from 'tap'
import { randomBytes, topology } from './topology.js'

const PLAYER_ORIGIN = 'http://127.0.0.2:9000'

t.test('CORS on media and errors with the default origins "*"', async (t) => {
  const topo = await topology({ shields: 1 })
  t.teardown(() => topo.close())
  const edge = topo.edge
  await topo.store.put('v/cors/720p/seg_00001.m4s', randomBytes(5000, 7))
  const seg = topo.sign('/v/cors/720p/seg_00001.m4s')
  const headers = { origin: PLAYER_ORIGIN }

  const cases: [string, string, Record<string, string>, number][] = [
    ['200 (miss)', seg, {}, 200],
    ['200 (hit)', seg, {}, 200],
    ['206', seg, { range: 'bytes=0-99' }, 206],
    ['403 (token refused)', '/v/cors/720p/seg_00001.m4s', {}, 403],
    ['404', topo.sign('/v/cors/720p/seg_00009.m4s'), {}, 404],
  ]
  for (const [what, path, extra, status] of cases) {
    const r = await fetch(edge.url + path, { headers: { ...headers, ...extra } })
    await r.arrayBuffer()
    t.equal(r.status, status, what)
    t.equal(r.headers.get('access-control-allow-origin'), '*', `${what}: allow-origin`)
    t.match(
      r.headers.get('access-control-expose-headers'),
      /Content-Length.*Content-Range.*Age.*X-Cache/,
      `${what}: exposes what players read`,
    )
    t.equal(r.headers.get('timing-allow-origin'), '*', `${what}: Timing-Allow-Origin`)
  }

  const preflight = await fetch(edge.url + seg, {
    method: 'OPTIONS',
    headers: { ...headers, 'access-control-request-method': 'GET', 'access-control-request-headers': 'range' },
  })
  t.equal(preflight.status, 204, 'preflight: 204')
  t.equal(preflight.headers.get('access-control-allow-origin'), '*')
  t.equal(preflight.headers.get('access-control-allow-methods'), 'GET, HEAD, OPTIONS')
  t.match(preflight.headers.get('access-control-allow-headers'), /Range/)
  t.match(preflight.headers.get('access-control-max-age'), /^\d+$/)

  // The edge's own player page still plays on its own origin (same-origin needs no CORS).
  const page = await fetch(edge.url + topo.sign('/v/cors/player.html'))
  await page.arrayBuffer()
  t.equal(page.status, 200, 'player page')
})

t.test('a list of origins echoes the allowed one with Vary: Origin', async (t) => {
  const topo = await topology({ shields: 1, edge: { cors: { origins: [PLAYER_ORIGIN], maxAgeS: 60 } } })
  t.teardown(() => topo.close())
  const edge = topo.edge
  await topo.store.put('v/list/720p/seg_00001.m4s', randomBytes(3000, 9))
  const seg = topo.sign('/v/list/720p/seg_00001.m4s')
  const ok = await fetch(edge.url + seg, { headers: { origin: PLAYER_ORIGIN } })
  await ok.arrayBuffer()
  t.equal(ok.headers.get('access-control-allow-origin'), PLAYER_ORIGIN)
  t.equal(ok.headers.get('vary'), 'Origin')
  const other = await fetch(edge.url + seg, { headers: { origin: 'https://elsewhere.example' } })
  await other.arrayBuffer()
  t.equal(other.status, 200, 'served (the browser, not the edge, enforces CORS)')
  t.equal(other.headers.get('access-control-allow-origin'), null, 'not allowed')
  t.equal(other.headers.get('vary'), 'Origin')
  const refused = await fetch(edge.url + '/v/list/720p/seg_00001.m4s', { headers: { origin: PLAYER_ORIGIN } })
  await refused.arrayBuffer()
  t.equal(refused.status, 403)
  t.equal(refused.headers.get('access-control-allow-origin'), PLAYER_ORIGIN, 'the refusal is readable by the player')
  const preflight = await fetch(edge.url + seg, {
    method: 'OPTIONS',
    headers: { origin: PLAYER_ORIGIN, 'access-control-request-method': 'GET' },
  })
  t.equal(preflight.status, 204)
  t.equal(preflight.headers.get('access-control-max-age'), '60')
})
