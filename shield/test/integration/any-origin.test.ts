// A shield as a reverse proxy cache in front of any origin: `paths` chooses the path prefixes it
// serves and `requireTierSecret: false` opens it to clients without the tier secret (a trusted
// network). The defaults stay those of a video shield: /v/ only, tier secret required.
import t from 'tap'
import { ScriptedOrigin, startTier, tempDir } from '../../../shared/testing/index.js'

const SECRET = 'any-origin-tier-secret-0123456789'
const BODY = Buffer.from('console.log("app")\n')

t.test('a shield in front of any origin', async (t) => {
  const tmp = tempDir('vcdn-any-origin-')
  t.teardown(tmp.remove)
  const origin = new ScriptedOrigin()
  origin.static('/assets/app.js', BODY, { 'content-type': 'text/javascript', 'cache-control': 'max-age=3600' })
  origin.static('/v/any/720p/0.m4s', BODY, { 'content-type': 'video/iso.segment', 'cache-control': 'max-age=3600' })
  for (const path of ['/assets/echo.js', '/assets/list.js']) {
    origin.routes.set(path, (req, res) => {
      const query = new URL(req.url ?? '/', 'http://x').search
      res.writeHead(200, { 'content-type': 'text/javascript', 'cache-control': 'max-age=3600' }).end(`query ${query}`)
    })
  }
  origin.routes.set('/assets/hello.txt', (req, res) => {
    const lang = req.headers['accept-language'] ?? 'none'
    res
      .writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=3600', vary: 'Accept-Language' })
      .end(`hello in ${lang}`)
  })
  let formVersion = 0
  origin.routes.set('/assets/form', async (req, res) => {
    if (req.method === 'GET' || req.method === 'HEAD') {
      res
        .writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=3600' })
        .end(`version ${formVersion}`)
      return
    }
    let body = ''
    for await (const chunk of req) body += String(chunk)
    formVersion++
    res.writeHead(201, { 'content-type': 'text/plain', 'x-origin-saw': `${req.method} ${body}` }).end('created')
  })
  await origin.listen()
  t.teardown(() => origin.close())
  const start = (extra: Record<string, unknown>, name: string) =>
    startTier(
      'shield',
      { tierSecret: SECRET, upstreams: [origin.url], cache: { dir: `${tmp.dir}/${name}` }, ...extra },
      { dir: tmp.dir },
    )

  t.test(
    'with paths ["/"] and requireTierSecret false it serves any path to a client without the secret',
    async (t) => {
      const shield = await start({ paths: ['/'], requireTierSecret: false }, 'open')
      t.teardown(() => shield.stop())
      const first = await fetch(`${shield.url}/assets/app.js`)
      t.equal(first.status, 200)
      t.same(Buffer.from(await first.arrayBuffer()), BODY)
      const second = await fetch(`${shield.url}/assets/app.js`)
      t.equal(second.status, 200)
      await second.arrayBuffer()
      t.equal(origin.count('/assets/app.js'), 1, 'the second request is a hit')
      t.match(shield.output(), /"level":40[^\n]*tier auth is off/, 'a warning says tier auth is off')
    },
  )

  t.test('the query string is part of the key and reaches the origin', async (t) => {
    const shield = await start({ paths: ['/'], requireTierSecret: false }, 'query')
    t.teardown(() => shield.stop())
    const get = async (query: string): Promise<string> => {
      const r = await fetch(`${shield.url}/assets/echo.js${query}`)
      t.equal(r.status, 200)
      return r.text()
    }
    t.equal(await get('?a=1'), 'query ?a=1')
    t.equal(await get('?a=2'), 'query ?a=2', 'another query is another object')
    t.equal(await get('?a=1'), 'query ?a=1')
    t.equal(await get(''), 'query ', 'no query is yet another')
    t.equal(origin.count('/assets/echo.js'), 3, 'the repeated ?a=1 was a hit')
  })

  t.test('cache.query "list" keeps only the named parameters in the key and the upstream request', async (t) => {
    const shield = await start(
      { paths: ['/'], requireTierSecret: false, cache: { dir: `${tmp.dir}/qlist`, query: 'list', queryParams: ['q'] } },
      'qlist',
    )
    t.teardown(() => shield.stop())
    const before = origin.count('/assets/list.js')
    const get = async (query: string): Promise<string> => {
      const r = await fetch(`${shield.url}/assets/list.js${query}`)
      t.equal(r.status, 200)
      return r.text()
    }
    t.equal(await get('?q=1&session=a'), 'query ?q=1', 'only q reaches the origin')
    t.equal(await get('?session=b&q=1&CMCD=bl%3D100'), 'query ?q=1', 'other parameters do not make another object')
    t.equal(await get('?q=2'), 'query ?q=2')
    t.equal(origin.count('/assets/list.js') - before, 2, 'one origin request per kept q')
  })

  t.test('request headers reach the origin and a Vary response is stored per variant', async (t) => {
    const shield = await start({ paths: ['/'], requireTierSecret: false }, 'vary')
    t.teardown(() => shield.stop())
    const get = async (lang: string): Promise<string> => {
      const r = await fetch(`${shield.url}/assets/hello.txt`, { headers: { 'accept-language': lang } })
      t.equal(r.status, 200)
      return r.text()
    }
    t.equal(await get('en'), 'hello in en')
    t.equal(await get('fr'), 'hello in fr', 'another Accept-Language is another variant')
    t.equal(await get('en'), 'hello in en')
    t.equal(origin.count('/assets/hello.txt'), 2, 'the repeated en request was a hit')
  })

  t.test('a POST reaches the origin with its body and invalidates the stored target', async (t) => {
    const shield = await start({ paths: ['/'], requireTierSecret: false }, 'pass')
    t.teardown(() => shield.stop())
    const get = async (): Promise<string> => (await fetch(`${shield.url}/assets/form`)).text()
    t.equal(await get(), 'version 0')
    t.equal(await get(), 'version 0')
    t.equal(origin.count('/assets/form'), 1, 'the second GET was a hit')
    const post = await fetch(`${shield.url}/assets/form`, { method: 'POST', body: 'x=1' })
    t.equal(post.status, 201)
    t.equal(post.headers.get('x-origin-saw'), 'POST x=1', 'the origin got the method and the body')
    t.equal(await post.text(), 'created')
    t.equal(await get(), 'version 1', 'the stored GET answer was invalidated (RFC 9111 §4.4)')
    t.equal(origin.count('/assets/form'), 3)
  })

  t.test('with passUnsafeMethods false a POST is answered 405 and never reaches the origin', async (t) => {
    const shield = await start({ paths: ['/'], requireTierSecret: false, passUnsafeMethods: false }, 'nopass')
    t.teardown(() => shield.stop())
    const before = origin.count('/assets/form')
    const post = await fetch(`${shield.url}/assets/form`, { method: 'POST', body: 'x=1' })
    t.equal(post.status, 405)
    t.equal(post.headers.get('allow'), 'GET, HEAD')
    await post.arrayBuffer()
    t.equal(origin.count('/assets/form'), before)
  })

  t.test('by default it refuses a path outside /v/ and a client without the secret', async (t) => {
    const shield = await start({}, 'default')
    t.teardown(() => shield.stop())
    const outside = await fetch(`${shield.url}/assets/app.js`, { headers: { 'x-vcdn-tier': SECRET } })
    t.equal(outside.status, 404)
    await outside.arrayBuffer()
    const noSecret = await fetch(`${shield.url}/v/any/720p/0.m4s`)
    t.equal(noSecret.status, 401)
    await noSecret.arrayBuffer()
    const video = await fetch(`${shield.url}/v/any/720p/0.m4s`, { headers: { 'x-vcdn-tier': SECRET } })
    t.equal(video.status, 200)
    await video.arrayBuffer()
    t.notMatch(shield.output(), /tier auth is off/, 'no warning when tier auth is on')
  })

  t.test('paths limit what an open shield serves', async (t) => {
    const shield = await start({ paths: ['/assets/'], requireTierSecret: false }, 'assets')
    t.teardown(() => shield.stop())
    const asset = await fetch(`${shield.url}/assets/app.js`)
    t.equal(asset.status, 200)
    await asset.arrayBuffer()
    const video = await fetch(`${shield.url}/v/any/720p/0.m4s`)
    t.equal(video.status, 404, '/v/ is not in paths')
    await video.arrayBuffer()
  })
})
