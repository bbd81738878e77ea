// Playback tokens at the edge (docs/architecture.md §3): every refusal is a coded 403 and never
// leaks the secret.
import t, { type Test } from 'tap'
import { signToken } from '../../../shared/token/index.js'
import { waitFor } from '../../../shared/testing/index.js'
import { randomBytes, topology, KEYS } from './topology.js'

interface ErrorBody {
  error: { code: string; message: string }
}

t.test('playback tokens', async (t) => {
  const topo = await topology({ shields: 1, edge: { accessLog: true } })
  t.teardown(() => topo.close())
  const edge = topo.edge
  await topo.store.put('v/tok/720p/seg_00001.m4s', randomBytes(1000, 1))
  await topo.store.put('v/other/720p/seg_00001.m4s', randomBytes(1000, 2))
  const nowS = Math.floor(Date.now() / 1000)

  async function expect403(t: Test, path: string, code: string): Promise<void> {
    const r = await fetch(edge.url + path)
    t.equal(r.status, 403, `${code}: 403`)
    const text = await r.text()
    const body = JSON.parse(text) as ErrorBody
    t.equal(body.error.code, code)
    for (const secret of Object.values(KEYS)) t.notOk(text.includes(secret), 'no secret in the body')
  }

  t.test('a valid token plays, with either active key (rotation)', async (t) => {
    for (const kid of ['k1', 'k2']) {
      const r = await fetch(edge.url + topo.sign('/v/tok/720p/seg_00001.m4s', { kid }))
      t.equal(r.status, 200, `kid ${kid}`)
      await r.arrayBuffer()
    }
  })

  t.test('a missing token is refused', async (t) => {
    await expect403(t, '/v/tok/720p/seg_00001.m4s', 'ERR_TOKEN_MISSING')
  })

  t.test('a forged signature is refused', async (t) => {
    const forged = signToken({ exp: nowS + 600, acl: '/v/tok/', kid: 'k1' }, { k1: 'not-the-real-key' })
    await expect403(t, `/t/${forged}/v/tok/720p/seg_00001.m4s`, 'ERR_TOKEN_SIGNATURE')
  })

  t.test('an unknown key id is refused', async (t) => {
    const tok = signToken({ exp: nowS + 600, acl: '/v/tok/', kid: 'k9' }, { k9: 'whatever' })
    await expect403(t, `/t/${tok}/v/tok/720p/seg_00001.m4s`, 'ERR_TOKEN_KEY')
  })

  t.test('an expired token is refused', async (t) => {
    const tok = signToken({ exp: nowS - 10, acl: '/v/tok/', kid: 'k1' }, KEYS)
    await expect403(t, `/t/${tok}/v/tok/720p/seg_00001.m4s`, 'ERR_TOKEN_EXPIRED')
  })

  t.test('a token for another video is refused', async (t) => {
    const tok = signToken({ exp: nowS + 600, acl: '/v/tok/', kid: 'k1' }, KEYS)
    await expect403(t, `/t/${tok}/v/other/720p/seg_00001.m4s`, 'ERR_TOKEN_SCOPE')
  })

  t.test('a token bound to another client address is refused, and the right one plays', async (t) => {
    const tok = signToken({ exp: nowS + 600, acl: '/v/tok/', kid: 'k1', ip: '10.9.8.7' }, KEYS)
    await expect403(t, `/t/${tok}/v/tok/720p/seg_00001.m4s`, 'ERR_TOKEN_IP')
    const mine = signToken({ exp: nowS + 600, acl: '/v/tok/', kid: 'k1', ip: '127.0.0.1' }, KEYS)
    const r = await fetch(`${edge.url}/t/${mine}/v/tok/720p/seg_00001.m4s`)
    t.equal(r.status, 200)
    await r.arrayBuffer()
  })

  t.test('garbage tokens are refused as malformed', async (t) => {
    for (const tok of ['x', 'a.b', '....', 'A'.repeat(3000)]) {
      await expect403(t, `/t/${tok}/v/tok/720p/seg_00001.m4s`, 'ERR_TOKEN_MALFORMED')
    }
  })

  t.test('access lines never carry a whole token', async (t) => {
    await topo.store.put('v/tok/720p/seg_00002.m4s', randomBytes(1000, 3))
    const path = topo.sign('/v/tok/720p/seg_00002.m4s')
    const token = path.split('/')[2]!
    const r = await fetch(edge.url + path)
    await r.arrayBuffer()
    // pino writes asynchronously: wait for the line rather than racing it
    const line = await waitFor(
      () =>
        edge
          .output()
          .split('\n')
          .filter((l) => l.includes('"access":true') && l.includes('seg_00002'))
          .map((l) => JSON.parse(l) as { status: number; cache: string; key: string; bytes: number })[0],
      { what: 'the access line' },
    )
    t.equal(line.status, 200)
    t.equal(line.cache, 'MISS')
    t.equal(line.key, '/v/tok/720p/seg_00002.m4s')
    t.equal(line.bytes, 1000)
    t.notOk(edge.output().includes(token), 'the token is not in the logs')
  })
})
