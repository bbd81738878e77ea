import t from 'tap'
import {
  isVideoDirAcl,
  normaliseIp,
  parseToken,
  queryToken,
  signedPath,
  signToken,
  splitTokenPath,
  TokenVerifier,
} from '../index.js'

const KEYS = { k1: 'first-secret-0123456789', k2: 'second-secret-9876543210' }
const NOW_MS = 1_750_000_000_000
const EXP = NOW_MS / 1000 + 3600

function clock(startMs = NOW_MS): { now: () => number; advance: (ms: number) => void } {
  let ms = startMs
  return {
    now: () => ms,
    advance: (d) => {
      ms += d
    },
  }
}

function verifier(now = clock().now, keys: Record<string, string> = KEYS): TokenVerifier {
  return new TokenVerifier({ keys, now })
}

t.test('a signed token verifies for a path under its acl', async (t) => {
  const token = signToken({ exp: EXP, acl: '/v/abc/', kid: 'k1' }, KEYS)
  t.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/, 'one URL path segment')
  const v = verifier()
  t.doesNotThrow(() => v.verify(token, '/v/abc/master.m3u8', '10.0.0.1'))
  t.doesNotThrow(() => v.verify(token, '/v/abc/720p/seg_00001.m4s', '10.0.0.2'), 'no ip binding → any client')
  t.same(parseToken(token).payload, { exp: EXP, acl: '/v/abc/', kid: 'k1' })
})

t.test('signedPath puts the token first and defaults to the master playlist', async (t) => {
  const path = signedPath({ prefix: '/v/abc/', ttlS: 60, kid: 'k2', keys: KEYS, nowMs: NOW_MS, sid: 's-1' })
  const split = splitTokenPath(path)
  t.ok(split)
  if (!split) return
  t.equal(split.path, '/v/abc/master.m3u8')
  t.same(parseToken(split.token).payload, { exp: NOW_MS / 1000 + 60, acl: '/v/abc/', kid: 'k2', sid: 's-1' })
  t.doesNotThrow(() => verifier().verify(split.token, split.path, '1.2.3.4'))
  const mpd = signedPath({
    prefix: '/v/abc/',
    path: '/v/abc/manifest.mpd',
    ttlS: 60,
    kid: 'k1',
    keys: KEYS,
    nowMs: NOW_MS,
  })
  t.match(mpd, /^\/t\/[^/]+\/v\/abc\/manifest\.mpd$/)
  t.throws(() => signedPath({ prefix: '/v/abc', ttlS: 60, kid: 'k1', keys: KEYS, nowMs: NOW_MS }), /prefix/)
  t.throws(
    () => signedPath({ prefix: '/v/abc/', path: '/v/other/x', ttlS: 60, kid: 'k1', keys: KEYS, nowMs: NOW_MS }),
    /path/,
  )
  t.throws(() => signedPath({ prefix: '/v/abc/', ttlS: 0, kid: 'k1', keys: KEYS, nowMs: NOW_MS }), /ttlS/)
  t.throws(() => signedPath({ prefix: '/v/abc/', ttlS: 5, kid: 'k9', keys: KEYS, nowMs: NOW_MS }), {
    code: 'ERR_TOKEN_KEY',
  })
})

t.test('signedPath grants one whole video directory; a broader ACL needs isBroadAllowed', async (t) => {
  const sign = (prefix: string, extra: { isBroadAllowed?: boolean } = {}): string =>
    signedPath({ prefix, ttlS: 60, kid: 'k1', keys: KEYS, nowMs: NOW_MS, ...extra })
  for (const prefix of ['/', '/v/', '/v/abc/720p/']) {
    t.throws(() => sign(prefix), /whole video directory/, prefix)
    const split = splitTokenPath(sign(prefix, { isBroadAllowed: true }))
    t.equal(parseToken(split!.token).payload.acl, prefix, `${prefix} with isBroadAllowed`)
  }
  t.ok(isVideoDirAcl('/v/abc/'))
  for (const acl of ['/', '/v/', '/v//', '/v/abc', '/v/abc/x/', '/x/abc/']) t.notOk(isVideoDirAcl(acl), acl)
})

t.test('splitTokenPath finds the token segment or returns null', async (t) => {
  t.same(splitTokenPath('/t/abc.def/v/x/master.m3u8'), { token: 'abc.def', path: '/v/x/master.m3u8' })
  for (const p of ['/v/x/master.m3u8', '/t/', '/t//v/x', '/t/abc', '/tt/abc/v', '']) t.equal(splitTokenPath(p), null, p)
})

t.test('a forged signature is refused', async (t) => {
  const token = signToken({ exp: EXP, acl: '/v/abc/', kid: 'k1' }, KEYS)
  const forged = signToken({ exp: EXP, acl: '/v/abc/', kid: 'k1' }, { k1: 'attacker-guess' })
  t.throws(() => verifier().verify(forged, '/v/abc/master.m3u8', '1.2.3.4'), { code: 'ERR_TOKEN_SIGNATURE' })
  const last = token.at(-1) === 'A' ? 'B' : 'A'
  t.throws(() => verifier().verify(token.slice(0, -1) + last, '/v/abc/master.m3u8', '1.2.3.4'), {
    code: 'ERR_TOKEN_SIGNATURE',
  })
})

t.test('a tampered payload is refused even though it parses', async (t) => {
  const token = signToken({ exp: EXP, acl: '/v/abc/', kid: 'k1' }, KEYS)
  const [, sig] = token.split('.')
  const widened = Buffer.from(JSON.stringify({ exp: EXP + 86_400, acl: '/', kid: 'k1' })).toString('base64url')
  t.throws(() => verifier().verify(`${widened}.${sig}`, '/v/other/master.m3u8', '1.2.3.4'), {
    code: 'ERR_TOKEN_SIGNATURE',
  })
})

t.test('an unknown kid is refused', async (t) => {
  const token = signToken({ exp: EXP, acl: '/v/abc/', kid: 'k3' }, { k3: 'retired' })
  t.throws(() => verifier().verify(token, '/v/abc/master.m3u8', '1.2.3.4'), { code: 'ERR_TOKEN_KEY' })
})

t.test('an expired token is refused', async (t) => {
  const token = signToken({ exp: NOW_MS / 1000 - 1, acl: '/v/abc/', kid: 'k1' }, KEYS)
  t.throws(() => verifier().verify(token, '/v/abc/master.m3u8', '1.2.3.4'), { code: 'ERR_TOKEN_EXPIRED' })
  const atExpiry = signToken({ exp: NOW_MS / 1000, acl: '/v/abc/', kid: 'k1' }, KEYS)
  t.throws(
    () => verifier().verify(atExpiry, '/v/abc/master.m3u8', '1.2.3.4'),
    { code: 'ERR_TOKEN_EXPIRED' },
    'exp is exclusive',
  )
})

t.test('a path outside the acl, or not normalised, is refused', async (t) => {
  const token = signToken({ exp: EXP, acl: '/v/abc/', kid: 'k1' }, KEYS)
  const v = verifier()
  for (const path of [
    '/v/abd/master.m3u8',
    '/v/abcd/x',
    '/v/ab',
    '/',
    '',
    '/v/abc/../xyz/master.m3u8',
    '/v/abc/./x',
    '/v/abc/..',
    '/v/abc/%2e%2e/x',
    '/v/abc/a%2Fb',
    '/v/abc/a\\b',
    '/v/abc/a\0',
  ]) {
    t.throws(() => v.verify(token, path, '1.2.3.4'), { code: 'ERR_TOKEN_SCOPE' }, JSON.stringify(path))
  }
  t.doesNotThrow(() => v.verify(token, '/v/abc/a..b/.hidden/x', '1.2.3.4'), 'dots inside names are fine')
})

t.test('an ip-bound token is refused from another address', async (t) => {
  const token = signToken({ exp: EXP, acl: '/v/abc/', kid: 'k1', ip: '203.0.113.7' }, KEYS)
  const v = verifier()
  t.doesNotThrow(() => v.verify(token, '/v/abc/master.m3u8', '203.0.113.7'))
  t.throws(() => v.verify(token, '/v/abc/master.m3u8', '203.0.113.8'), { code: 'ERR_TOKEN_IP' })
  t.throws(() => v.verify(token, '/v/abc/master.m3u8', ''), { code: 'ERR_TOKEN_IP' })
})

t.test('an IPv4-mapped IPv6 client address equals the IPv4 address', async (t) => {
  const v4 = signToken({ exp: EXP, acl: '/v/abc/', kid: 'k1', ip: '127.0.0.1' }, KEYS)
  const mapped = signToken({ exp: EXP, acl: '/v/abc/', kid: 'k1', ip: '::ffff:127.0.0.1' }, KEYS)
  const v = verifier()
  for (const client of ['127.0.0.1', '::ffff:127.0.0.1', '::FFFF:127.0.0.1', '::ffff:7f00:1']) {
    t.doesNotThrow(() => v.verify(v4, '/v/abc/x.m4s', client), client)
    t.doesNotThrow(() => v.verify(mapped, '/v/abc/x.m4s', client), `mapped token, ${client}`)
  }
  const v6 = signToken({ exp: EXP, acl: '/v/abc/', kid: 'k1', ip: '2001:DB8:0:0::1' }, KEYS)
  t.doesNotThrow(() => v.verify(v6, '/v/abc/x.m4s', '2001:db8::1'), 'IPv6 spellings compare canonically')
  t.throws(() => v.verify(v6, '/v/abc/x.m4s', '2001:db8::2'), { code: 'ERR_TOKEN_IP' })
  t.equal(normaliseIp('not-an-ip'), 'not-an-ip')
})

t.test('every configured key verifies during a rotation', async (t) => {
  const v = verifier()
  for (const kid of ['k1', 'k2']) {
    const token = signToken({ exp: EXP, acl: '/v/abc/', kid }, KEYS)
    t.doesNotThrow(() => v.verify(token, '/v/abc/master.m3u8', '1.2.3.4'), kid)
  }
  const onlyNew = verifier(clock().now, { k2: KEYS.k2 })
  t.throws(
    () => onlyNew.verify(signToken({ exp: EXP, acl: '/v/abc/', kid: 'k1' }, KEYS), '/v/abc/x', '1.2.3.4'),
    { code: 'ERR_TOKEN_KEY' },
    'a retired key stops verifying',
  )
})

t.test('a memo hit still enforces expiry, scope and ip', async (t) => {
  const c = clock()
  const v = verifier(c.now)
  const token = signToken({ exp: NOW_MS / 1000 + 10, acl: '/v/abc/', kid: 'k1', ip: '10.1.1.1' }, KEYS)
  v.verify(token, '/v/abc/master.m3u8', '10.1.1.1')
  t.equal(v.memoSize, 1, 'the verified token is remembered')
  t.throws(() => v.verify(token, '/v/other/x', '10.1.1.1'), { code: 'ERR_TOKEN_SCOPE' })
  t.throws(() => v.verify(token, '/v/abc/x', '10.1.1.2'), { code: 'ERR_TOKEN_IP' })
  c.advance(9_999)
  t.doesNotThrow(() => v.verify(token, '/v/abc/seg.m4s', '10.1.1.1'))
  c.advance(1)
  t.throws(() => v.verify(token, '/v/abc/seg.m4s', '10.1.1.1'), { code: 'ERR_TOKEN_EXPIRED' })
  t.equal(v.memoSize, 0, 'the expired token is dropped from the memo')
})

t.test('the memo is bounded and evicts the least recently used token', async (t) => {
  const v = new TokenVerifier({ keys: KEYS, now: clock().now, memoMax: 3 })
  const tokens = [0, 1, 2, 3].map((i) => signToken({ exp: EXP, acl: `/v/${i}/`, kid: 'k1' }, KEYS))
  for (const [i, token] of tokens.slice(0, 3).entries()) v.verify(token, `/v/${i}/x`, '1.1.1.1')
  v.verify(tokens[0] ?? '', '/v/0/x', '1.1.1.1') // touch 0 → 1 is now the oldest
  v.verify(tokens[3] ?? '', '/v/3/x', '1.1.1.1')
  t.equal(v.memoSize, 3)
  const none = new TokenVerifier({ keys: KEYS, memoMax: 0 })
  none.verify(signToken({ exp: Math.floor(Date.now() / 1000) + 60, acl: '/v/', kid: 'k1' }, KEYS), '/v/x', '1.1.1.1')
  t.equal(none.memoSize, 0, 'memoMax 0 disables the memo')
})

t.test('malformed tokens throw ERR_TOKEN_MALFORMED and never crash', async (t) => {
  const v = verifier()
  const sig = 'A'.repeat(43)
  const b64 = (o: unknown): string => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url')
  const inputs: unknown[] = [
    '',
    '.',
    'abc',
    'a.b',
    '.'.repeat(50),
    'x'.repeat(100_000),
    `${'x'.repeat(2000)}.${sig}`,
    `${b64('not json')}.${sig}`,
    `${b64('[]')}.${sig}`,
    `${b64('null')}.${sig}`,
    `${b64(7)}.${sig}`,
    `${b64({ exp: 'soon', acl: '/v/', kid: 'k1' })}.${sig}`,
    `${b64({ exp: 1e300, acl: '/v/', kid: 'k1' })}.${sig}`,
    `${b64({ exp: 5, acl: 'v/', kid: 'k1' })}.${sig}`,
    `${b64({ exp: 5, acl: '/v/', kid: '../k1' })}.${sig}`,
    `${b64({ exp: 5, acl: '/v/', kid: 'k1', ip: 'nope' })}.${sig}`,
    `${b64({ exp: 5, acl: '/v/', kid: 'k1', sid: 7 })}.${sig}`,
    `${b64({ exp: 5, acl: '/v/', kid: 'k1' })}.${sig}.x`,
    `${b64({ exp: 5, acl: '/v/', kid: 'k1' })}.${'A'.repeat(42)}=`,
    `a+b/c.${sig}`,
    '\u0000\uffff',
    `${b64({ exp: 5, acl: '/v/', kid: 'k1' })}`,
    undefined,
    null,
    42,
    {},
  ]
  for (const input of inputs) {
    const label = typeof input === 'string' ? JSON.stringify(input.slice(0, 30)) : String(input)
    t.throws(() => v.verify(input as string, '/v/x', '1.1.1.1'), { code: 'ERR_TOKEN_MALFORMED' }, label)
  }
})

t.test('error messages never contain the token', async (t) => {
  const token = signToken({ exp: NOW_MS / 1000 - 5, acl: '/v/abc/', kid: 'k1' }, KEYS)
  const [payload] = token.split('.')
  for (const [candidate, path] of [
    [token, '/v/abc/x'],
    [token.slice(0, -2) + 'zz', '/v/abc/x'],
    [`${payload}.${'B'.repeat(43)}`, '/v/abc/x'],
  ] as const) {
    try {
      verifier().verify(candidate, path, '1.1.1.1')
      t.fail('should throw')
    } catch (err) {
      const text = String(err) + JSON.stringify(err)
      t.notOk(text.includes(candidate.slice(0, 20)), 'no token prefix in the error')
    }
  }
})

t.test('a verifier without keys (an edge that needs no token) refuses every token with ERR_TOKEN_KEY', async (t) => {
  const open = new TokenVerifier({ keys: {}, now: () => NOW_MS })
  const tok = signToken({ exp: EXP, acl: '/v/abc/', kid: 'k1' }, KEYS)
  t.throws(() => open.verify(tok, '/v/abc/master.m3u8', '1.1.1.1'), { code: 'ERR_TOKEN_KEY' })
})

t.test('the constructor names the invalid field', async (t) => {
  t.throws(() => new TokenVerifier({ keys: null as unknown as Record<string, string> }), /options\.keys/)
  t.throws(() => new TokenVerifier({ keys: { k1: '' } }), /options\.keys\.k1/)
  t.throws(() => new TokenVerifier({ keys: { 'bad kid': 'x' } }), /options\.keys/)
  t.throws(() => new TokenVerifier({ keys: KEYS, memoMax: -1 }), /options\.memoMax/)
})

t.test('signToken validates its input', async (t) => {
  t.throws(() => signToken({ exp: 1.5, acl: '/v/', kid: 'k1' }, KEYS), /exp/)
  t.throws(() => signToken({ exp: EXP, acl: 'v/', kid: 'k1' }, KEYS), /acl/)
  t.throws(() => signToken({ exp: EXP, acl: '/v/../', kid: 'k1' }, KEYS), /acl/)
  t.throws(() => signToken({ exp: EXP, acl: '/v/', kid: 'k1', ip: '1.2.3' }, KEYS), /ip/)
  t.throws(() => signToken({ exp: EXP, acl: '/v/', kid: 'k1', sid: 'a b' }, KEYS), /sid/)
})

t.test('queryToken finds the first token parameter, decoded for checking and raw for passing on', async (t) => {
  t.equal(queryToken(''), null)
  t.equal(queryToken('a=1&b=2'), null)
  t.equal(queryToken('tokenx=1&xtoken=2&token'), null, 'only a parameter named exactly token, with a value')
  t.same(queryToken('a=1&token=p.s&token=other'), { token: 'p.s', raw: 'p.s' })
  t.same(queryToken('tok%65n=p%2Es'), { token: 'p.s', raw: 'p%2Es' }, 'names compared decoded, as the cache key does')
  t.same(queryToken('token=a~b=c'), { token: 'a~b=c', raw: 'a~b=c' }, 'everything after the first = is the value')
  for (const bad of ['token=', 'token=%zz', `token=${'A'.repeat(3 * 1024 + 1)}`]) {
    t.throws(() => queryToken(bad), { code: 'ERR_TOKEN_MALFORMED' }, bad.slice(0, 20))
  }
})

t.test('a query token verifies like a path token once decoded', async (t) => {
  const token = signToken({ exp: EXP, acl: '/v/abc/', kid: 'k1' }, KEYS)
  const found = queryToken(`CMCD=sid%3D%22x%22&token=${token.replace('.', '%2E')}`)
  t.ok(found)
  if (!found) return
  t.equal(found.token, token)
  t.doesNotThrow(() => verifier().verify(found.token, '/v/abc/master.m3u8', '10.0.0.1'))
})
