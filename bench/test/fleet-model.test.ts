// The long-video benchmark's fleet model (bench/README.md, "Long videos"): chunks handed out in
// index order to whichever of N machines is free first, each taking its encode CPU-seconds plus the
// rest of its job, then the stitch.
import t from 'tap'
import { dedicatedChunkS, fleetTimeToReadyS, type ChunkTiming } from '../lib/fleet-model.js'

const chunk = (index: number, encodeCpuS: number, restS = 0): ChunkTiming => ({
  index,
  encodeCpuS,
  encodeWallS: encodeCpuS * 3,
  jobS: encodeCpuS * 3 + restS,
})

t.test('a chunk on a machine of its own takes its encode CPU-seconds plus the rest of its job', async (t) => {
  t.equal(dedicatedChunkS(chunk(0, 10, 2)), 12, 'encode wall inflated 3× by a shared box does not count')
  t.equal(dedicatedChunkS({ index: 0, encodeCpuS: 5, encodeWallS: 9, jobS: 8 }), 5, 'never less than the encode')
})

t.test('one machine runs the chunks one after another, then the stitch', async (t) => {
  t.equal(fleetTimeToReadyS([chunk(0, 10), chunk(1, 10), chunk(2, 5)], 1, 3), 28)
})

t.test('chunks go in index order to the machine free first, and the stitch follows the last', async (t) => {
  // 0 → m1 (0–10), 1 → m2 (0–4), 2 → m2 (4–10), 3 → m1 (10–12) or m2 (10–12): the last ends at 12.
  const chunks = [chunk(3, 2), chunk(1, 4), chunk(0, 10), chunk(2, 6)]
  t.equal(fleetTimeToReadyS(chunks, 2, 1), 13)
  t.equal(fleetTimeToReadyS(chunks, 4, 1), 11, 'with a machine per chunk, the longest chunk')
  t.equal(fleetTimeToReadyS(chunks, 8, 0), 10, 'idle machines change nothing')
})

t.test('the model refuses a fleet that is not a positive whole number or a negative stitch', async (t) => {
  t.throws(() => fleetTimeToReadyS([chunk(0, 1)], 0, 1), /machines/)
  t.throws(() => fleetTimeToReadyS([chunk(0, 1)], 1.5, 1), /machines/)
  t.throws(() => fleetTimeToReadyS([chunk(0, 1)], 1, -1), /stitchS/)
})
