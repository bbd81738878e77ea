// CORS applied by the adapter to every response and to preflights (Fetch standard, CORS protocol).
import t, { type Test } from 'tap'
import { HttpServer, corsProblems, sendError, type CorsOptions, type Handler } from '../index.js'

async function serve(t: Test, handler: Handler, cors?: CorsOptions): Promise<string> {
  const server = new HttpServer({ host: '127.0.0.1', port: 0, handler, ...(cors ? { cors } : {}) })
  const port = await server.listen()
  t.teardown(() => server.drain(0))
  return `http://127.0.0.1:${port}`
}

// One map object for every response, as the cache engine hands a hot object's headers.
const MEDIA_HEADERS = Object.freeze({
  'content-type': 'video/mp4',
  'access-control-allow-origin': 'https://upstream.example',
  'x-cache': 'HIT',
})
const body = Buffer.from('0123456789')
const media: Handler = (req, res) => {
  if (req.path === '/missing') {
    sendError(res, 'ERR_NOT_FOUND')
    return
  }
  if (req.path === '/split') {
    // A map that takes the per-header path (nothing to render).
    res.start(200, {}, body.length)
    res.end(body)
    return
  }
  res.start(200, MEDIA_HEADERS, body.length)
  res.end(body)
}

t.test('with origins "*" every response and error carries the precomputed CORS fields', async (t) => {
  const url = await serve(t, media, { origins: ['*'] })
  for (const path of ['/seg.m4s', '/seg.m4s', '/missing', '/split']) {
    const res = await fetch(url + path, { headers: { origin: 'https://player.example' } })
    await res.arrayBuffer()
    t.equal(res.headers.get('access-control-allow-origin'), '*', `${path}: allow-origin * (one value)`)
    t.match(res.headers.get('access-control-expose-headers'), /Content-Range.*Age.*X-Cache/, `${path}: exposed`)
    t.equal(res.headers.get('timing-allow-origin'), '*', `${path}: timing`)
    t.equal(res.headers.get('vary'), null, `${path}: no Vary for *`)
  }
  const miss = await fetch(url + '/missing')
  t.equal(miss.status, 404)
  t.equal(miss.headers.get('access-control-allow-origin'), '*', 'a coded error is readable cross-origin')
})

t.test('a list of origins echoes the matching Origin with Vary: Origin, and only Vary for others', async (t) => {
  const url = await serve(t, media, { origins: ['https://player.example', 'http://127.0.0.2:9000'] })
  const ok = await fetch(url + '/seg.m4s', { headers: { origin: 'https://player.example' } })
  await ok.arrayBuffer()
  t.equal(ok.headers.get('access-control-allow-origin'), 'https://player.example')
  t.equal(ok.headers.get('timing-allow-origin'), 'https://player.example')
  t.equal(ok.headers.get('vary'), 'Origin')
  const other = await fetch(url + '/seg.m4s', { headers: { origin: 'https://evil.example' } })
  await other.arrayBuffer()
  t.equal(other.headers.get('access-control-allow-origin'), null, 'another origin is not allowed')
  t.equal(other.headers.get('vary'), 'Origin')
  const none = await fetch(url + '/missing')
  await none.arrayBuffer()
  t.equal(none.headers.get('vary'), 'Origin', 'no Origin: still Vary')
  const err = await fetch(url + '/missing', { headers: { origin: 'http://127.0.0.2:9000' } })
  await err.arrayBuffer()
  t.equal(err.status, 404)
  t.equal(err.headers.get('access-control-allow-origin'), 'http://127.0.0.2:9000')
})

t.test('a preflight is answered 204 before the handler; a plain OPTIONS reaches it', async (t) => {
  let handled = 0
  const url = await serve(
    t,
    (req, res) => {
      handled++
      sendError(res, 'ERR_REQUEST_METHOD', { allow: 'GET, HEAD' })
    },
    { origins: ['*'], maxAgeS: 600 },
  )
  const pre = await fetch(url + '/v/x/seg.m4s', {
    method: 'OPTIONS',
    headers: {
      origin: 'https://player.example',
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'range, cmcd-request',
    },
  })
  t.equal(pre.status, 204)
  t.equal(pre.headers.get('access-control-allow-origin'), '*')
  t.equal(pre.headers.get('access-control-allow-methods'), 'GET, HEAD, OPTIONS')
  t.match(pre.headers.get('access-control-allow-headers'), /Range/)
  t.match(pre.headers.get('access-control-allow-headers'), /CMCD-Request/)
  t.equal(pre.headers.get('access-control-max-age'), '600')
  t.equal(handled, 0, 'the handler never saw the preflight')
  const plain = await fetch(url + '/v/x/seg.m4s', { method: 'OPTIONS' })
  t.equal(plain.status, 405, 'an OPTIONS that is no preflight goes to the handler')
  t.equal(handled, 1)
})

t.test('without cors the server adds nothing and forwards the map as given', async (t) => {
  const url = await serve(t, media)
  const res = await fetch(url + '/seg.m4s', { headers: { origin: 'https://player.example' } })
  await res.arrayBuffer()
  t.equal(res.headers.get('access-control-allow-origin'), 'https://upstream.example')
  t.equal(res.headers.get('timing-allow-origin'), null)
  const pre = await fetch(url + '/x', {
    method: 'OPTIONS',
    headers: { origin: 'https://a.example', 'access-control-request-method': 'GET' },
  })
  await pre.arrayBuffer()
  t.equal(pre.status, 200, 'without cors a preflight reaches the handler')
  t.equal(pre.headers.get('access-control-allow-methods'), null)
})

t.test('cors.origins problems name the entry', async (t) => {
  t.same(corsProblems(['*']), [])
  t.same(corsProblems(['https://a.example', 'http://127.0.0.2:9000']), [])
  t.match(corsProblems(['*', 'https://a.example']), [/only entry/])
  t.match(corsProblems(['https://a.example/path']), [/cors\.origins\[0\]/])
})
