// Slow viewers get whole bodies from the real edge → shield → origin processes: a client reading
// at 32–64 KB/s is never cut by uWS's idle timer (10 s), whether its object is a hit or a fill.
//
// The kernel's buffers on loopback hold several MB, so a cut shows late: each reader reads slowly
// for longer than uWS's idle timer and its 4 s tick, then fast to the end, and must get every
// byte. Before the send ticker, these sockets were closed 10-14 s in.
import t from 'tap'
import { createHash } from 'node:crypto'
import { slowGet as slowGetAt } from '../../../shared/testing/index.js'
import { randomBytes, topology, warm } from './topology.js'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const KB = 1024
const MiB = 1024 * 1024
const SLOW_PHASE_S = 18
const DEADLINE_MS = 120_000

function slowGet(port: number, path: string, bytesPerS: number, isBodyKept = true): ReturnType<typeof slowGetAt> {
  return slowGetAt(port, path, bytesPerS, { slowPhaseS: SLOW_PHASE_S, deadlineMs: DEADLINE_MS, isBodyKept })
}

t.test('slow viewers through edge → shield → origin', async (t) => {
  const topo = await topology({ shields: 1 })
  t.teardown(() => topo.close())
  const port = topo.edge.port

  t.test('a reader at 32 KB/s receives all of a 16 MiB object (an edge hit)', async (t) => {
    const body = randomBytes(16 * MiB, 11)
    await topo.store.put('v/slow1/1080p/seg_00001.m4s', body)
    const path = topo.sign('/v/slow1/1080p/seg_00001.m4s')
    await warm(topo.edge.url + path)
    const r = await slowGet(port, path, 32 * KB)
    t.equal(r.status, 200)
    t.equal(r.hash, sha(body), 'every byte')
  })

  t.test('50 concurrent readers at 64 KB/s of a cold 8 MiB object all receive whole bodies', async (t) => {
    const body = randomBytes(8 * MiB, 12)
    await topo.store.put('v/slow2/1080p/seg_00001.m4s', body)
    const path = topo.sign('/v/slow2/1080p/seg_00001.m4s')
    const results = await Promise.all(Array.from({ length: 50 }, () => slowGet(port, path, 64 * KB, false)))
    t.equal(results.filter((r) => r.status === 200 && r.bytes === body.length).length, 50, 'every body whole')
  })
})
