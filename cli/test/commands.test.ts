// The operator commands of `vcdn` as real processes: sign (a path a real edge accepts, scoped,
// IP-bound, per key), purge (against a real edge's admin listener) and token (a JWT a real origin
// accepts); bad arguments exit 2 with a message and the usage.
import t from 'tap'
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ScriptedOrigin, startTier, tempDir, VCDN_BIN, waitFor } from '../../shared/testing/index.js'
import { splitTokenPath, TokenVerifier } from '../../shared/token/index.js'

const SECRET = 'commands-tier-secret-0123456789abcdef'
const KEYS = { k1: 'commands-key-one-0123456789abcdef', k2: 'commands-key-two-0123456789abcdef' }

interface Run {
  code: number
  stdout: string
  stderr: string
}

function vcdn(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [VCDN_BIN, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

t.test('vcdn operator commands', async (t) => {
  const tmp = tempDir('vcdn-commands-')
  t.teardown(tmp.remove)
  const upstream = new ScriptedOrigin()
  await upstream.listen()
  t.teardown(() => upstream.close())
  const playlist = Buffer.from('#EXTM3U\n#EXT-X-VERSION:7\n')
  // Like the origin, the upstream says how long the playlist is fresh (RFC 9111 §4.2).
  upstream.static('/v/abc/master.m3u8', playlist, {
    'content-type': 'application/vnd.apple.mpegurl',
    'cache-control': 'public, max-age=60',
  })
  const edgeConfig = {
    tierSecret: SECRET,
    origin: upstream.url,
    signingKeys: KEYS,
    cache: { dir: join(tmp.dir, 'edge') },
    accessLog: false,
  }
  const edgeFile = join(tmp.dir, 'edge.json')
  writeFileSync(edgeFile, JSON.stringify(edgeConfig))
  const edge = await startTier('edge', edgeConfig, { dir: tmp.dir })
  t.teardown(() => edge.stop())
  const verifier = new TokenVerifier({ keys: KEYS })
  const tokenOf = (out: string): { token: string; path: string } => {
    const split = splitTokenPath(out.trim())
    if (split === null) throw new Error(`not a signed path: ${out}`)
    return split
  }

  t.test('sign prints a path the edge serves, scoped to its prefix', async (t) => {
    const r = await vcdn(['sign', '--config', edgeFile, '--prefix', '/v/abc/', '--path', '/v/abc/master.m3u8'])
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /^\/t\/[^/]+\/v\/abc\/master\.m3u8\n$/)
    const served = await fetch(edge.url + r.stdout.trim())
    t.equal(served.status, 200)
    t.same(Buffer.from(await served.arrayBuffer()), playlist)
    const { token } = tokenOf(r.stdout)
    t.doesNotThrow(() => verifier.verify(token, '/v/abc/720p/index.m3u8', '192.0.2.1'), 'covers the prefix')
    t.throws(() => verifier.verify(token, '/v/other/master.m3u8', '192.0.2.1'), { code: 'ERR_TOKEN_SCOPE' })
    const other = await fetch(edge.url + r.stdout.trim().replace('/v/abc/', '/v/other/'))
    t.equal(other.status, 403, 'the edge refuses it for another video')
    await other.arrayBuffer()
  })

  t.test('sign binds --ip and --kid, and --base makes a URL', async (t) => {
    const bound = await vcdn(['sign', '--config', edgeFile, '--prefix', '/v/abc/', '--ip', '203.0.113.7'])
    t.equal(bound.code, 0, bound.stderr)
    const { token, path } = tokenOf(bound.stdout)
    t.equal(path, '/v/abc/master.m3u8', "without --path: the prefix's master playlist")
    t.doesNotThrow(() => verifier.verify(token, '/v/abc/master.m3u8', '203.0.113.7'))
    t.throws(() => verifier.verify(token, '/v/abc/master.m3u8', '198.51.100.1'), { code: 'ERR_TOKEN_IP' })
    const k2 = await vcdn(['sign', '--config', edgeFile, '--prefix', '/v/abc/', '--kid', 'k2', '--ttl', '60'])
    t.equal(k2.code, 0, k2.stderr)
    const onlyK2 = new TokenVerifier({ keys: { k2: KEYS.k2 } })
    const onlyK1 = new TokenVerifier({ keys: { k1: KEYS.k1 } })
    t.doesNotThrow(() => onlyK2.verify(tokenOf(k2.stdout).token, '/v/abc/x.m4s', '192.0.2.1'), 'signed with k2')
    t.throws(() => onlyK1.verify(tokenOf(k2.stdout).token, '/v/abc/x.m4s', '192.0.2.1'), { code: 'ERR_TOKEN_KEY' })
    const url = await vcdn(['sign', '--config', edgeFile, '--prefix', '/v/abc/', '--base', 'http://edge.example:8080/'])
    t.equal(url.code, 0, url.stderr)
    t.match(url.stdout, /^http:\/\/edge\.example:8080\/t\/[^/]+\/v\/abc\/master\.m3u8\n$/)
  })

  t.test('sign refuses bad arguments with exit 2, a reason and the usage', async (t) => {
    for (const [args, reason] of [
      [['sign', '--config', edgeFile], /--prefix/],
      [['sign', '--config', edgeFile, '--prefix', '/v/abc/', '--kid', 'nope'], /no signing key nope/],
      [['sign', '--config', edgeFile, '--prefix', '/v/abc/', '--ttl', '-5'], /--ttl must be a positive integer/],
    ] as const) {
      const r = await vcdn([...args])
      t.equal(r.code, 2, args.join(' '))
      t.match(r.stderr, reason)
      t.match(r.stderr, /usage: vcdn/)
      t.equal(r.stdout, '', 'nothing signed')
    }
  })

  t.test('sign refuses a placeholder or short signing key', async (t) => {
    for (const [key, reason] of [
      [
        'change-me: openssl rand -base64 48 (the same on origin and edges)',
        /signingKeys\.k1 is an example placeholder/,
      ],
      ['short', /signingKeys\.k1 must be at least 32 bytes/],
    ] as const) {
      const file = join(tmp.dir, 'weak-edge.json')
      writeFileSync(file, JSON.stringify({ ...edgeConfig, signingKeys: { k1: key } }))
      const r = await vcdn(['sign', '--config', file, '--prefix', '/v/abc/'])
      t.equal(r.code, 2)
      t.match(r.stderr, reason)
      t.equal(r.stdout, '', 'nothing signed')
    }
  })

  t.test('sign refuses an ACL broader than one video directory (/ or /v/) unless --allow-broad', async (t) => {
    for (const prefix of ['/', '/v/']) {
      const r = await vcdn(['sign', '--config', edgeFile, '--prefix', prefix, '--path', '/v/abc/master.m3u8'])
      t.equal(r.code, 2, prefix)
      t.match(r.stderr, /not one whole video directory .*--allow-broad/, prefix)
      t.equal(r.stdout, '', 'nothing signed')
    }
    const broad = await vcdn([
      'sign',
      '--config',
      edgeFile,
      '--prefix',
      '/v/',
      '--path',
      '/v/abc/master.m3u8',
      '--allow-broad',
    ])
    t.equal(broad.code, 0, broad.stderr)
    const { token } = tokenOf(broad.stdout)
    t.doesNotThrow(() => verifier.verify(token, '/v/other/master.m3u8', '192.0.2.1'), 'asked for: opens every video')
  })

  t.test(
    'purge removes a prefix (or marks a key stale with --soft) on a node given its tier secret, and fails without it',
    async (t) => {
      const path = (await vcdn(['sign', '--config', edgeFile, '--prefix', '/v/abc/', '--path', '/v/abc/master.m3u8']))
        .stdout
      // The client can have the last byte a moment before the fill is committed: ask until HIT.
      await waitFor(
        async () => {
          const r = await fetch(edge.url + path.trim())
          await r.arrayBuffer()
          return r.headers.get('x-cache') === 'HIT'
        },
        { what: 'the playlist cached at the edge' },
      )
      const wrong = await vcdn(['purge', '--admin', edge.adminUrl, '--secret', 'wrong', '--prefix', '/v/abc/'])
      t.equal(wrong.code, 1)
      t.match(wrong.stdout, /^401 .*ERR_TIER_AUTH/)
      const ok = await vcdn(['purge', '--admin', edge.adminUrl, '--secret', SECRET, '--prefix', '/v/abc/'])
      t.equal(ok.code, 0, ok.stderr)
      t.match(ok.stdout, /^200 /)
      t.equal((JSON.parse(ok.stdout.slice(4)) as { removed: number }).removed, 1)
      const after = await fetch(edge.url + path.trim())
      t.equal(after.headers.get('x-cache'), 'MISS', 'purged')
      await after.arrayBuffer()
      await waitFor(
        async () => {
          const r = await fetch(edge.url + path.trim())
          await r.arrayBuffer()
          return r.headers.get('x-cache') === 'HIT'
        },
        { what: 'the playlist cached again' },
      )
      const soft = await vcdn([
        'purge',
        '--admin',
        edge.adminUrl,
        '--secret',
        SECRET,
        '--key',
        '/v/abc/master.m3u8',
        '--soft',
      ])
      t.equal(soft.code, 0, soft.stderr)
      t.match(JSON.parse(soft.stdout.slice(4)), { key: '/v/abc/master.m3u8', mode: 'soft', removed: 1 })
      const stale = await fetch(edge.url + path.trim())
      await stale.arrayBuffer()
      t.not(stale.headers.get('x-cache'), 'HIT', 'soft-purged: asked upstream again')
      const missing = await vcdn(['purge', '--admin', edge.adminUrl, '--prefix', '/v/abc/'])
      t.equal(missing.code, 2)
      t.match(missing.stderr, /purge needs --admin, --secret and --prefix/)
    },
  )

  t.test('token mints a JWT the origin accepts for its role', async (t) => {
    const originConfig = {
      tierSecret: SECRET,
      dataDir: join(tmp.dir, 'origin'),
      store: { kind: 'fs', dir: join(tmp.dir, 'store') },
      jwt: { secret: 'commands-jwt-secret-0123456789abcdef', issuer: 'vcdn', audience: 'vcdn-api' },
      accessLog: false,
    }
    const originFile = join(tmp.dir, 'origin.json')
    writeFileSync(originFile, JSON.stringify(originConfig))
    const origin = await startTier('origin', originConfig, { dir: tmp.dir })
    t.teardown(() => origin.stop())
    const minted = await vcdn(['token', '--config', originFile, '--sub', 'alice', '--role', 'uploader', '--ttl', '60'])
    t.equal(minted.code, 0, minted.stderr)
    const jwt = minted.stdout.trim()
    const list = await fetch(`${origin.url}/v1/videos`, { headers: { authorization: `Bearer ${jwt}` } })
    t.equal(list.status, 200, 'the origin accepts it')
    await list.arrayBuffer()
    const claim = await fetch(`${origin.url}/v1/jobs/claim`, {
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
      body: JSON.stringify({ workerId: 'w1' }),
    })
    t.equal(claim.status, 403, 'an uploader cannot claim jobs')
    await claim.arrayBuffer()
    const badRole = await vcdn(['token', '--config', originFile, '--sub', 'alice', '--role', 'root'])
    t.equal(badRole.code, 2)
    t.match(badRole.stderr, /--role must be one of uploader, admin, worker/)
    t.equal(badRole.stdout, '')
  })
})
