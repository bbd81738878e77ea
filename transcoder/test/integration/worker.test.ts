// The transcoder fleet against a real origin: a worker killed mid-job loses its lease and another
// worker finishes the job with the same published structure; bad sources fail once, coded, and
// publish nothing.
import t from 'tap'
import { join } from 'node:path'
import { FsStore } from '../../../shared/store/index.js'
import { makeClip, startFullStack, tempDir, waitFor } from '../../../shared/testing/index.js'
import { makeAudioOnly, makeGarbage } from '../fixtures.js'

async function publishedKeys(store: FsStore, id: string): Promise<string[]> {
  const infos = await store.list(`v/${id}/`, { limit: 10_000 })
  return infos.map((i) => i.key.slice(`v/${id}/`.length)).sort()
}

t.test('the transcoder fleet', async (t) => {
  const tmp = tempDir('vcdn-fleet-')
  t.teardown(tmp.remove)
  const stack = await startFullStack({
    dir: tmp.dir,
    transcoders: 0,
    transcoder: { preset: 'ultrafast', leaseMs: 2000 },
    // The origin's own probe is off, so bad sources reach the transcoder's probe, the one under test.
    origin: { jobs: { maxAttempts: 3, backoffBaseMs: 100, backoffMaxMs: 1000 }, upload: { isProbed: false } },
  })
  t.teardown(() => stack.close())
  const store = new FsStore({ dir: join(tmp.dir, 'store') })
  const clip = makeClip(join(tmp.dir, 'clip.mp4'), { seconds: 12, width: 1280, height: 720 })

  t.test('a worker killed mid-job: the lease expires and another worker publishes the same structure', async (t) => {
    // reference: one clean run
    const first = await stack.startTranscoder()
    const refId = await stack.upload(clip)
    const ref = await stack.settle(refId)
    t.equal(ref.status, 'ready')
    const refKeys = await publishedKeys(store, refId)
    t.ok(refKeys.includes('master.m3u8') && refKeys.includes('manifest.mpd'), 'reference published')

    const id = await stack.upload(clip)
    await waitFor(
      async () => {
        const v = (await stack.api<{ status: string; progress: number }>('GET', `/v1/videos/${id}`)).body
        return v.status === 'processing' && v.progress > 0.05
      },
      { timeoutMs: 60_000, what: 'the job to be running' },
    )
    await first.kill9()
    t.not(
      (await stack.api<{ status: string }>('GET', `/v1/videos/${id}`)).body.status,
      'ready',
      'not ready when killed',
    )
    await stack.startTranscoder()
    const v = await stack.settle(id)
    t.equal(v.status, 'ready', `finished by the second worker (${JSON.stringify(v.error)})`)
    t.same(await publishedKeys(store, id), refKeys, 'the same objects are published')
    t.same(
      v.renditions.map((r) => [r.name, r.width, r.height]),
      ref.renditions.map((r) => [r.name, r.width, r.height]),
      'the same ladder',
    )
    const master = (await store.get(`v/${id}/master.m3u8`))!
    let text = ''
    for await (const c of master.body as AsyncIterable<Buffer>) text += c.toString()
    t.match(text, /#EXT-X-STREAM-INF:.*BANDWIDTH=\d+/, 'a master playlist with variants')
  })

  t.test('a corrupt or audio-only upload fails once, coded, and publishes nothing', async (t) => {
    const corrupt = makeGarbage(tmp.dir)
    const audio = makeAudioOnly(tmp.dir)
    for (const [file, code] of [
      [corrupt, /^ERR_TRANSCODE_(CORRUPT|NOT_VIDEO)$/],
      [audio, /^ERR_TRANSCODE_NOT_VIDEO$/],
    ] as const) {
      const id = await stack.upload(file)
      const v = await stack.settle(id)
      t.equal(v.status, 'failed', `${file} failed`)
      t.match(v.error?.code ?? '', code)
      t.same(await publishedKeys(store, id), [], 'nothing published')
      const dead = await stack.api<{ jobs: { videoId: string; attempt: number; lastError: unknown }[] }>(
        'GET',
        '/v1/jobs/dead-letters',
        undefined,
        stack.adminToken,
      )
      const job = dead.body.jobs.find((j) => j.videoId === id)
      t.equal(job?.attempt, 1, 'not retried: one attempt, kept in the dead-letter list')
    }
  })
})
