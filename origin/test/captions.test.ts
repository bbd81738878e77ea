// Caption files attached to a video on a real `vcdn origin` on 127.0.0.1.
import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { startTier, tempDir } from '../../shared/testing/index.js'
import { mintToken, type Role } from '../src/auth.js'

const SECRET = 'captions-test-tier-secret-0123456789abcdef'
const JWT = { secret: 'captions-test-jwt-secret-0123456789abcdef', issuer: 'vcdn', audience: 'vcdn-api' }
const SRT =
  '1\r\n00:00:00,500 --> 00:00:01,500\r\nHola & <i>bienvenidos</i>\r\n\r\n2\r\n00:00:03,000 --> 00:00:05,000\r\nAdiós\r\n'

t.test('captions are attached to a video before it is processed, and bad ones are refused', async (t) => {
  const tmp = tempDir()
  t.teardown(tmp.remove)
  const storeDir = join(tmp.dir, 'store')
  const origin = await startTier(
    'origin',
    {
      tierSecret: SECRET,
      dataDir: join(tmp.dir, 'data'),
      store: { kind: 'fs', dir: storeDir },
      jwt: JWT,
      accessLog: false,
      upload: { isProbed: false },
    },
    { dir: tmp.dir },
  )
  t.teardown(() => origin.stop())
  const as = (sub: string, role: Role): Record<string, string> => ({
    authorization: `Bearer ${mintToken({ sub, role, ttlS: 600 }, JWT)}`,
  })
  const created = await fetch(`${origin.url}/v1/videos`, {
    method: 'POST',
    headers: { ...as('alice', 'uploader'), 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'two languages' }),
  })
  t.equal(created.status, 201)
  const { id } = (await created.json()) as { id: string }
  const post = (query: string, body: string | Uint8Array<ArrayBuffer>, who: [string, Role] = ['alice', 'uploader']) =>
    fetch(`${origin.url}/v1/videos/${id}/captions?${query}`, {
      method: 'POST',
      headers: { ...as(...who), 'content-type': 'text/plain' },
      body,
    })
  const codeOf = async (r: Response): Promise<string> => ((await r.json()) as { error: { code: string } }).error.code
  const stored = (lang: string): string => join(storeDir, 'sources', id, 'captions', `${lang}.vtt`)

  const ok = await post(`lang=spa&name=${encodeURIComponent('Español')}`, SRT)
  t.equal(ok.status, 201)
  t.same(await ok.json(), { id, language: 'es', name: 'Español', cues: 2 })
  t.equal(
    readFileSync(stored('es'), 'utf8'),
    'WEBVTT Español\n\n00:00:00.500 --> 00:00:01.500\nHola &amp; <i>bienvenidos</i>\n\n00:00:03.000 --> 00:00:05.000\nAdiós\n',
    'stored beside the source as WebVTT, the name on the WEBVTT line',
  )
  const byAdmin = await post('lang=en', 'WEBVTT\n\n00:01.000 --> 00:02.000\nHello\n', ['root', 'admin'])
  t.equal(byAdmin.status, 201, 'an admin may attach captions to any video')
  t.ok(existsSync(stored('en')))

  const refusals: [string, string, string | Uint8Array<ArrayBuffer>, [string, Role], number, string][] = [
    ['not captions', 'lang=fr', 'just some text\n', ['alice', 'uploader'], 400, 'ERR_CAPTION_INVALID'],
    [
      'a broken timing line',
      'lang=fr',
      '1\n00:00:01,000 -> 00:00:02,000\nx\n',
      ['alice', 'uploader'],
      400,
      'ERR_CAPTION_INVALID',
    ],
    [
      'not UTF-8',
      'lang=fr',
      new Uint8Array([0x57, 0x45, 0xff, 0xfe]),
      ['alice', 'uploader'],
      400,
      'ERR_CAPTION_INVALID',
    ],
    ['no language', '', SRT, ['alice', 'uploader'], 400, 'ERR_API_BODY'],
    ['und', 'lang=und', SRT, ['alice', 'uploader'], 400, 'ERR_API_BODY'],
    ['a name with quotes', 'lang=fr&name=%22x%22', SRT, ['alice', 'uploader'], 400, 'ERR_API_BODY'],
    ["someone else's video", 'lang=fr', SRT, ['bob', 'uploader'], 403, 'ERR_AUTH_OWNER'],
    ['a viewer', 'lang=fr', SRT, ['carol', 'worker'], 403, 'ERR_AUTH_ROLE'],
    [
      'too large',
      'lang=fr',
      `WEBVTT\n\n${'00:01.000 --> 00:02.000\nx\n\n'.repeat(90_000)}`,
      ['alice', 'uploader'],
      413,
      'ERR_API_BODY_TOO_LARGE',
    ],
  ]
  for (const [name, query, body, who, status, code] of refusals) {
    const r = await post(query, body, who)
    t.equal(r.status, status, name)
    t.equal(await codeOf(r), code, name)
  }
  t.notOk(existsSync(stored('fr')), 'nothing refused is stored')
  const health = await fetch(`${origin.url}/v1/videos/${id}`, { headers: as('alice', 'uploader') })
  t.equal(health.status, 200, 'the origin is still serving')
})
