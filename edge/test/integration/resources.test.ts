// Resources and state of a running node, with real processes on 127.0.0.1: a damaged cache index
// does not stop a node from starting.
import { open, stat } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { metric } from '../../../shared/testing/index.js'
import { randomBytes, topology, warm } from './topology.js'

t.test('an edge started on a cache dir whose index has a bad header starts, serves a miss then a hit', async (t) => {
  const topo = await topology({ shields: 1 })
  t.teardown(() => topo.close())
  await topo.store.put('v/corrupt1/720p/seg_00001.m4s', randomBytes(20_000, 5))
  const path = topo.sign('/v/corrupt1/720p/seg_00001.m4s')
  await warm(topo.edge.url + path)
  t.equal(await topo.edge.stop(), 0)
  const indexPath = join(topo.dir, 'edge', 'index.sqlite')
  t.ok((await stat(indexPath)).size > 0, 'the edge wrote an index')
  const fh = await open(indexPath, 'r+')
  await fh.write(Buffer.from('this is no SQLite header'), 0, 24, 0)
  await fh.close()

  const edge = await topo.startEdge()
  t.equal(await metric(edge.adminUrl, 'vcdn_edge_cache_index_rebuilds'), 1, 'the rebuild is counted')
  t.match(edge.output(), /"level":40[^\n]*cache index damaged/, 'a warning is logged')
  const miss = await fetch(edge.url + path)
  t.equal(miss.status, 200)
  t.equal(miss.headers.get('x-cache'), 'MISS', 'the disk tier started empty')
  t.equal((await miss.arrayBuffer()).byteLength, 20_000)
  const hit = await warm(edge.url + path)
  t.equal(hit.headers.get('x-cache'), 'HIT')
  t.equal(await metric(edge.adminUrl, 'vcdn_edge_cache_objects'), 1)
})
