// Prewarm and soft purge through a whole tier (origin, shield, edge, a transcoder): a prewarm makes
// the first N segments of every rendition HITs at an edge and a shield that never saw the video,
// and no more; a soft purge keeps the bytes and each tier revalidates (a 304 all the way from the
// origin); a hard purge of a key makes both tiers fetch it whole again.
import t from 'tap'
import { join } from 'node:path'
import { makeClip, metric, startFullStack, STACK_SECRET, tempDir } from '../../../shared/testing/index.js'

interface PrewarmAnswer {
  keys: number
  segments: number
  nodes: { id: string; tier: string; status: number; present: number; filled: number; failed: number }[]
}

t.test('prewarm fills edge and shield; soft purge revalidates; hard purge refetches', async (t) => {
  const tmp = tempDir('vcdn-prewarm-')
  t.teardown(tmp.remove)
  // The edge's own prefetch is off: what is warm here is what the prewarm fetched, and every
  // upstream request counted is one a test request caused.
  const stack = await startFullStack({
    dir: tmp.dir,
    transcoder: { preset: 'ultrafast' },
    edge: { prefetch: { segments: 0, cmcd: false } },
  })
  t.teardown(() => stack.close())
  // 10 s in 4 s segments: three segments per rendition, so the third shows where prewarm stops.
  const clip = makeClip(join(tmp.dir, 'clip.mp4'), { seconds: 10, width: 640, height: 360 })
  const id = await stack.upload(clip)
  const video = await stack.settle(id, 180_000)
  t.equal(video.status, 'ready', `transcoded (${JSON.stringify(video.error)})`)
  const base = (video.playback?.hls ?? '').replace(/master\.m3u8$/, '')
  const renditions = video.renditions.map((r) => r.name)
  t.ok(renditions.length >= 2, `a ladder (${renditions.join(', ')})`)

  const atEdge = async (file: string): Promise<{ cache: string | null; body: Buffer }> => {
    const r = await fetch(base + file)
    t.equal(r.status, 200, `edge ${file}`)
    return { cache: r.headers.get('x-cache'), body: Buffer.from(await r.arrayBuffer()) }
  }
  const atShield = async (file: string): Promise<string | null> => {
    const r = await fetch(`${stack.shield.url}/v/${id}/${file}`, { headers: { 'x-vcdn-tier': STACK_SECRET } })
    await r.arrayBuffer()
    t.equal(r.status, 200, `shield ${file}`)
    return r.headers.get('x-cache')
  }

  const refused = await stack.api('POST', `/v1/videos/${id}/prewarm`, { segments: 101 })
  t.equal(refused.status, 400, 'segments is bounded')
  const prewarm = await stack.api<PrewarmAnswer>('POST', `/v1/videos/${id}/prewarm`, { segments: 2 })
  t.equal(prewarm.status, 200)
  t.same(
    prewarm.body.nodes.map((n) => [n.tier, n.status, n.failed]),
    [
      ['shield', 200, 0],
      ['edge', 200, 0],
    ],
    'the shield first, then the edge; nothing failed',
  )
  // master + MPD, and per rendition: its playlist, init segment and two segments (audio included).
  t.ok(prewarm.body.keys >= 2 + renditions.length * 4, `${prewarm.body.keys} keys`)
  for (const node of prewarm.body.nodes) t.equal(node.filled, prewarm.body.keys, `${node.tier} filled every key`)

  const first = `${renditions[0]}/seg_00001.m4s`
  for (const name of renditions) {
    for (const file of [`${name}/index.m3u8`, `${name}/init.mp4`, `${name}/seg_00001.m4s`, `${name}/seg_00002.m4s`]) {
      t.equal(await atShield(file), 'HIT', `shield: ${file} is warm`)
      t.equal((await atEdge(file)).cache, 'HIT', `edge: ${file} is warm`)
    }
  }
  for (const file of ['master.m3u8', 'manifest.mpd']) t.equal((await atEdge(file)).cache, 'HIT', file)
  const third = `${renditions[0]}/seg_00003.m4s`
  t.equal((await atEdge(third)).cache, 'MISS', 'not past the first two segments')

  // Soft purge of the whole video: every tier keeps the bytes and asks its upstream with validators.
  const bodyBefore = (await atEdge(first)).body
  const shieldRevalidated = await metric(stack.shield.adminUrl, 'vcdn_shield_cache_revalidated_total')
  const soft = await stack.api<{ mode: string; nodes: { status: number; removed: number }[] }>(
    'POST',
    '/v1/purge',
    { prefix: `/v/${id}/`, soft: true },
    stack.adminToken,
  )
  t.equal(soft.status, 200)
  t.equal(soft.body.mode, 'soft')
  t.ok(
    soft.body.nodes.every((n) => n.status === 200 && n.removed > 0),
    `each node marked objects (${JSON.stringify(soft.body.nodes)})`,
  )
  const revalidated = await atEdge(first)
  t.equal(revalidated.cache, 'REVALIDATED', 'the edge revalidated')
  t.ok(revalidated.body.equals(bodyBefore), 'the same bytes')
  t.equal(
    await metric(stack.shield.adminUrl, 'vcdn_shield_cache_revalidated_total'),
    shieldRevalidated + 1,
    'the shield revalidated with the origin (a 304)',
  )
  t.equal((await atEdge(first)).cache, 'HIT', 'fresh again')

  // Hard purge of one key: both tiers fetch it whole.
  const shieldUpstream = await metric(stack.shield.adminUrl, 'vcdn_shield_upstream_requests_total')
  const hard = await stack.api<{ mode: string }>('POST', '/v1/purge', { key: `/v/${id}/${first}` }, stack.adminToken)
  t.equal(hard.status, 200)
  t.equal(hard.body.mode, 'hard')
  const refetched = await atEdge(first)
  t.equal(refetched.cache, 'MISS', 'the edge fetched it again')
  t.ok(refetched.body.equals(bodyBefore))
  t.equal(await metric(stack.shield.adminUrl, 'vcdn_shield_upstream_requests_total'), shieldUpstream + 1)
  t.equal(await metric(stack.shield.adminUrl, 'vcdn_shield_cache_revalidated_total'), shieldRevalidated + 1)
})
