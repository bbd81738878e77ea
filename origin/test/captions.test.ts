// Caption files attached to a video on a real `vcdn origin` on 127.0.0.1.
import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { startTier, tempDir, type TierProcess } from '../../shared/testing/index.js'
import { mintToken, type Role } from '../src/auth.js'

const SECRET = 'captions-test-tier-secret-0123456789abcdef'
const JWT = { secret: 'captions-test-jwt-secret-0123456789abcdef', issuer: 'vcdn', audience: 'vcdn-api' }
const SRT =
  '1\r\n00:00:00,500 --> 00:00:01,500\r\nHola & <i>bienvenidos</i>\r\n\r\n2\r\n00:00:03,000 --> 00:00:05,000\r\nAdiós\r\n'

/** An origin on a disk store of its own (removed with the test), uploads not probed. */
async function startOrigin(t: Test): Promise<{ origin: TierProcess; storeDir: string }> {
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
  return { origin, storeDir }
}

t.test('captions are attached to a video before it is processed, and bad ones are refused', async (t) => {
  const { origin, storeDir } = await startOrigin(t)
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

t.test('caption files in tus creation metadata are attached, and bad ones refuse the creation', async (t) => {
  const { origin, storeDir } = await startOrigin(t)
  const auth = { authorization: `Bearer ${mintToken({ sub: 'alice', role: 'uploader', ttlS: 600 }, JWT)}` }
  const created = await fetch(`${origin.url}/v1/videos`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'captions in metadata' }),
  })
  t.equal(created.status, 201)
  const { id } = (await created.json()) as { id: string }
  const b64 = (text: string | Uint8Array): string => Buffer.from(text).toString('base64')
  // tus creation (tus core §Upload-Metadata: `key base64value` pairs), as tus-js-client sends it.
  const create = (metadata: string): Promise<Response> =>
    fetch(`${origin.url}/v1/uploads`, {
      method: 'POST',
      headers: { ...auth, 'tus-resumable': '1.0.0', 'upload-length': '10', 'upload-metadata': metadata },
    })
  const captionsDir = join(storeDir, 'sources', id, 'captions')
  const videoId = `videoId ${b64(id)}`

  const refusals: [string, string, number, string][] = [
    ['not captions', `${videoId},caption_fr ${b64('just some text\n')}`, 400, 'ERR_CAPTION_INVALID'],
    ['not UTF-8', `${videoId},caption_fr ${b64(new Uint8Array([0x57, 0x45, 0xff, 0xfe]))}`, 400, 'ERR_CAPTION_INVALID'],
    ['an empty file', `${videoId},caption_fr`, 400, 'ERR_CAPTION_INVALID'],
    ['one good, one bad', `${videoId},caption_es ${b64(SRT)},caption_fr ${b64('x')}`, 400, 'ERR_CAPTION_INVALID'],
    ['no language', `${videoId},caption_ ${b64(SRT)}`, 400, 'ERR_API_BODY'],
    ['und', `${videoId},caption_und ${b64(SRT)}`, 400, 'ERR_API_BODY'],
  ]
  for (const [name, metadata, status, code] of refusals) {
    const r = await create(metadata)
    t.equal(r.status, status, name)
    t.equal(((await r.json()) as { error: { code: string } }).error.code, code, name)
    t.equal(r.headers.get('location'), null, `${name}: no upload is created`)
  }
  t.notOk(existsSync(captionsDir), 'nothing refused is stored')

  const ok = await create(
    `${videoId},filename ${b64('a.mp4')},caption_spa ${b64(SRT)},caption_en ${b64('WEBVTT\n\n00:01.000 --> 00:02.000\nHello\n')}`,
  )
  t.equal(ok.status, 201, 'the upload is created')
  t.match(ok.headers.get('location'), /^\/v1\/uploads\//)
  await ok.arrayBuffer()
  t.equal(
    readFileSync(join(captionsDir, 'es.vtt'), 'utf8'),
    'WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nHola &amp; <i>bienvenidos</i>\n\n00:00:03.000 --> 00:00:05.000\nAdiós\n',
    'SRT stored as WebVTT under the canonical language, as the captions route stores it',
  )
  t.equal(readFileSync(join(captionsDir, 'en.vtt'), 'utf8'), 'WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHello\n')

  // About 2 KiB of captions still fits the 4 KiB request head uWS.js reads (docs/architecture.md §7.2).
  const cues = Array.from(
    { length: 58 },
    (_, i) => `00:${String(i).padStart(2, '0')}.000 --> 00:${String(i).padStart(2, '0')}.500\nZeile ${i}\n`,
  )
  const long = `WEBVTT\n\n${cues.join('\n')}`
  t.ok(long.length > 1900, `a ${long.length}-byte file`)
  const fits = await create(`${videoId},caption_de ${b64(long)}`)
  t.equal(fits.status, 201, 'a file of about 2 KiB fits')
  await fits.arrayBuffer()
  t.ok(existsSync(join(captionsDir, 'de.vtt')))
})
