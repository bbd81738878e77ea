// What a tier's config lets it start with, as real `vcdn <tier>` processes: an open edge needs no
// signing keys; placeholder and short secrets are refused at start, naming the key.
import t from 'tap'
import { join } from 'node:path'
import { ScriptedOrigin, startTier, tempDir } from '../../shared/testing/index.js'

const SECRET = 'tier-config-test-secret-0123456789abcdef'

t.test('an edge with requireToken false and no signingKeys starts and serves without a token', async (t) => {
  const tmp = tempDir('vcdn-tier-config-')
  t.teardown(tmp.remove)
  const upstream = new ScriptedOrigin()
  await upstream.listen()
  t.teardown(() => upstream.close())
  const playlist = Buffer.from('#EXTM3U\n#EXT-X-VERSION:7\n')
  upstream.static('/v/open/master.m3u8', playlist, {
    'content-type': 'application/vnd.apple.mpegurl',
    'cache-control': 'public, max-age=60',
  })
  const edge = await startTier(
    'edge',
    { tierSecret: SECRET, origin: upstream.url, requireToken: false, cache: { dir: join(tmp.dir, 'edge') } },
    { dir: tmp.dir },
  )
  t.teardown(() => edge.stop())
  const open = await fetch(`${edge.url}/v/open/master.m3u8`)
  t.equal(open.status, 200)
  t.same(Buffer.from(await open.arrayBuffer()), playlist)
  // A token it has no key for cannot be verified: refused, coded, and the edge keeps serving.
  const tokened = await fetch(`${edge.url}/t/eyJleHAiOjF9.c2ln/v/open/master.m3u8`)
  t.equal(tokened.status, 403)
  t.match(((await tokened.json()) as { error: { code: string } }).error.code, /^ERR_TOKEN_/)
  t.equal((await fetch(`${edge.url}/v/open/master.m3u8`)).status, 200)
})
