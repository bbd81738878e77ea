// What a tier's config lets it start with, as real `vcdn <tier>` processes: an open edge needs no
// signing keys; placeholder and short secrets are refused at start, naming the key.
import t from 'tap'
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, ScriptedOrigin, startTier, tempDir, VCDN_BIN } from '../../shared/testing/index.js'

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

/** `vcdn <args>` to its exit: code and stderr. */
function vcdn(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [VCDN_BIN, ...args],
      { timeout: 60_000, env: { ...process.env, ...env } },
      (err, _o, e) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stderr: e })
      },
    )
  })
}

t.test(
  'a tier started from its example config unchanged exits with ERR_CONFIG_INVALID naming each placeholder secret',
  async (t) => {
    const cases: [string, string[]][] = [
      ['origin', ['tierSecret', 'signingKeys.k1', 'jwt.secret']],
      ['shield', ['tierSecret']],
      ['edge', ['tierSecret', 'signingKeys.k1']],
      ['transcoder', ['token']],
    ]
    for (const [tier, paths] of cases) {
      const r = await vcdn([tier, '--config', join(ROOT, 'config', `${tier}.example.json`)])
      t.not(r.code, 0, `${tier} does not start`)
      t.match(r.stderr, /ERR_CONFIG_INVALID/, tier)
      for (const path of paths) t.match(r.stderr, `${path} is an example placeholder`, `${tier}: ${path}`)
      t.notMatch(r.stderr, /listening/)
    }
  },
)

t.test('a tier refuses a secret shorter than 32 bytes from its file or the environment, naming the key', async (t) => {
  const tmp = tempDir('vcdn-tier-config-')
  t.teardown(tmp.remove)
  const file = join(tmp.dir, 'shield.json')
  const base = { upstreams: ['http://127.0.0.1:9'], cache: { dir: join(tmp.dir, 'shield') } }
  writeFileSync(file, JSON.stringify({ ...base, tierSecret: 'x'.repeat(31) }))
  const fromFile = await vcdn(['shield', '--config', file])
  t.not(fromFile.code, 0)
  t.match(fromFile.stderr, /ERR_CONFIG_INVALID.*tierSecret must be at least 32 bytes/)
  t.notMatch(fromFile.stderr, /x{31}/, 'the secret is not printed')
  const edgeFile = join(tmp.dir, 'edge.json')
  writeFileSync(edgeFile, JSON.stringify({ ...base, tierSecret: SECRET, origin: 'http://127.0.0.1:9' }))
  const fromEnv = await vcdn(['edge', '--config', edgeFile], { VCDN_SIGNING_KEYS: '{"k1":"one-char-short-key"}' })
  t.not(fromEnv.code, 0)
  t.match(fromEnv.stderr, /ERR_CONFIG_INVALID.*signingKeys\.k1 must be at least 32 bytes/)
})
