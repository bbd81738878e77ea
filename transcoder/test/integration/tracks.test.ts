// Every track a creator sends, end to end through real processes: a source with English and
// Spanish audio and a caption file attached through the API while the job is queued.
import { join } from 'node:path'
import t from 'tap'
import { parseMaster, parseMedia } from '../../../shared/hls/index.js'
import { FsStore } from '../../../shared/store/index.js'
import { startFullStack, tempDir } from '../../../shared/testing/index.js'
import { makeTwoLanguageClip } from '../track-fixtures.js'

const SRT = '1\n00:00:00,500 --> 00:00:01,500\nHallo\n\n2\n00:00:02,000 --> 00:00:03,000\nTschüss\n'

async function text(store: FsStore, key: string): Promise<string> {
  const got = await store.get(key)
  if (got === null) throw new Error(`${key} is not published`)
  let out = ''
  for await (const c of got.body as AsyncIterable<Buffer>) out += c.toString()
  return out
}

t.test('two audio languages and an uploaded caption reach the published master', async (t) => {
  const tmp = tempDir('vcdn-tracks-')
  t.teardown(tmp.remove)
  const stack = await startFullStack({ dir: tmp.dir, transcoders: 0, transcoder: { preset: 'ultrafast' } })
  t.teardown(() => stack.close())
  const store = new FsStore({ dir: join(tmp.dir, 'store') })
  const clip = makeTwoLanguageClip(tmp.dir, 'two.mkv', { durationS: 6 })

  // No transcoder yet: the job waits in the queue while the caption is attached.
  const id = await stack.upload(clip)
  const attached = await fetch(`${stack.origin.url}/v1/videos/${id}/captions?lang=de&name=Deutsch`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.uploaderToken}`, 'content-type': 'application/x-subrip' },
    body: SRT,
  })
  t.equal(attached.status, 201, await attached.clone().text())

  await stack.startTranscoder()
  const v = await stack.settle(id, 240_000)
  t.equal(v.status, 'ready', JSON.stringify(v.error))
  const view = await stack.api<{ tracks: unknown }>('GET', `/v1/videos/${id}`)
  t.same(
    view.body.tracks,
    {
      audio: [
        { name: 'Español (Latinoamérica)', language: 'es', isDefault: true },
        { name: 'English', language: 'en', isDefault: false },
      ],
      subtitles: [{ name: 'Deutsch', language: 'de', isDefault: false }],
    },
    'the video view lists its tracks',
  )

  const master = parseMaster(await text(store, `v/${id}/master.m3u8`))
  t.same(
    master.audio.map((a) => [a.language, a.uri, a.isDefault]),
    [
      ['es', 'audio_es/index.m3u8', true],
      ['en', 'audio_en/index.m3u8', false],
    ],
  )
  t.same(
    master.subtitles?.map((s) => [s.groupId, s.name, s.language, s.uri]),
    [['subs', 'Deutsch', 'de', 'subs/de/index.m3u8']],
  )
  for (const variant of master.variants) t.equal(variant.subtitlesGroupId, 'subs')
  for (const uri of [...master.variants.map((x) => x.uri), 'audio_es/index.m3u8', 'audio_en/index.m3u8']) {
    t.ok(parseMedia(await text(store, `v/${id}/${uri}`)).segments.length > 0, `${uri} parses`)
  }
  const subs = parseMedia(await text(store, `v/${id}/subs/de/index.m3u8`))
  t.equal(subs.segments.length, 2, 'a 6 s video has two 4 s-grid subtitle segments')
  t.match(
    await text(store, `v/${id}/subs/de/seg_00001.vtt`),
    /X-TIMESTAMP-MAP=MPEGTS:\d+,LOCAL:00:00:00\.000[\s\S]*Hallo/,
  )
})
