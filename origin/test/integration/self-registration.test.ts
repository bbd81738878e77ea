// Nodes that register themselves (docs/architecture.md §7.4): an edge and a shield nobody registered
// by hand appear in GET /v1/nodes, receive the origin's purges (so a deleted video stops being
// served), and an edge that was down while a purge went out applies it when it comes back, before
// it serves a viewer.
import t from 'tap'
import { join } from 'node:path'
import { makeClip, startFullStack, tempDir, waitFor } from '../../../shared/testing/index.js'

interface NodesAnswer {
  nodes: { id: string; tier: string; source: string; lastSeenAtMs: number | null }[]
}

t.test('self-registered nodes get purges, and replay the ones they missed while down', async (t) => {
  const tmp = tempDir('vcdn-selfreg-')
  t.teardown(tmp.remove)
  const stack = await startFullStack({ dir: tmp.dir, transcoder: { preset: 'ultrafast' }, registerNodes: false })
  t.teardown(() => stack.close())

  const listed = await stack.api<NodesAnswer>('GET', '/v1/nodes', undefined, stack.adminToken)
  t.same(
    listed.body.nodes.map((n) => [n.id, n.tier, n.source]),
    [
      ['edge-1', 'edge', 'registered'],
      ['shield-1', 'shield', 'registered'],
    ],
    'both nodes registered themselves at start',
  )
  t.ok(
    listed.body.nodes.every((n) => typeof n.lastSeenAtMs === 'number'),
    'with a last-seen time',
  )

  const clip = makeClip(join(tmp.dir, 'clip.mp4'), { seconds: 4, width: 320, height: 240 })
  const id = await stack.upload(clip)
  const video = await stack.settle(id, 180_000)
  t.equal(video.status, 'ready', `transcoded (${JSON.stringify(video.error)})`)
  const base = (video.playback?.hls ?? '').replace(/master\.m3u8$/, '')
  const segment = `${video.renditions[0]?.name}/seg_00001.m4s`
  const cacheOf = async (file: string): Promise<{ status: number; cache: string | null }> => {
    const r = await fetch(base + file)
    await r.arrayBuffer()
    return { status: r.status, cache: r.headers.get('x-cache') }
  }
  const warm = async (file: string): Promise<void> => {
    await waitFor(async () => ((await cacheOf(file)).cache === 'HIT' ? true : null), { what: `${file} cached` })
  }
  await warm(segment)
  await warm('master.m3u8')

  // A purge while the edge is down: the shield gets it now, the edge when it is back.
  await stack.edge.stop()
  const purged = await stack.api<{ nodes: { id: string; status: number }[] }>(
    'POST',
    '/v1/purge',
    { key: `/v/${id}/${segment}` },
    stack.adminToken,
  )
  t.equal(purged.status, 200)
  t.same(
    purged.body.nodes.map((n) => [n.id, n.status]),
    [
      ['edge-1', 0],
      ['shield-1', 200],
    ],
    'the edge was unreachable, the shield purged',
  )
  await stack.restartEdge()
  t.same(await cacheOf(segment), { status: 200, cache: 'MISS' }, 'the returning edge applied the missed purge')
  t.equal((await cacheOf('master.m3u8')).cache, 'HIT', 'and kept the rest of its cache')

  // Delete: the API's purge reaches the self-registered edge, which stops serving the video.
  const deleted = await stack.api<{ purge: { nodes: { id: string; status: number }[] } }>('DELETE', `/v1/videos/${id}`)
  t.equal(deleted.status, 200)
  t.same(
    deleted.body.purge.nodes.map((n) => [n.id, n.status]),
    [
      ['edge-1', 200],
      ['shield-1', 200],
    ],
    'every node purged',
  )
  for (const file of ['master.m3u8', segment]) {
    t.equal((await cacheOf(file)).status, 404, `${file} is no longer served`)
  }
})
