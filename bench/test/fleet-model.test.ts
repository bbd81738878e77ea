// The long-video benchmark's fleet model (bench/README.md, "Long videos"): the audio job and the
// chunks handed out in queue order to whichever of N machines is free first, then the stitch.
import t from 'tap'
import { fleetTimeToReadyS } from '../lib/fleet-model.js'

t.test('one machine runs the chunks one after another, then the stitch', async (t) => {
  t.equal(fleetTimeToReadyS([10, 10, 5], 1, 3), 28)
})

t.test('chunks go in queue order to the machine free first, and the stitch follows the last', async (t) => {
  // 0 → m1 (0–10), 1 → m2 (0–4), 2 → m2 (4–10), 3 → m1 (10–12): the last ends at 12.
  const chunks = [10, 4, 6, 2]
  t.equal(fleetTimeToReadyS(chunks, 2, 1), 13)
  t.equal(fleetTimeToReadyS(chunks, 4, 1), 11, 'with a machine per chunk, the longest chunk')
  t.equal(fleetTimeToReadyS(chunks, 8, 0), 10, 'idle machines change nothing')
  t.equal(fleetTimeToReadyS([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], 4, 0), 3, '10 equal chunks on 4 machines: 3 rounds')
})

t.test('the audio job, queued first, runs beside the chunks instead of after the last one', async (t) => {
  const audio = 12
  const chunks = [10, 10, 10]
  // 4 machines: audio on m1 (0–12), the chunks on m2..m4 (0–10): the audio ends last, at 12.
  t.equal(fleetTimeToReadyS([audio, ...chunks], 4, 2), 14)
  // 2 machines: audio → m1 (0–12), c0 → m2 (0–10), c1 → m2 (10–20), c2 → m1 (12–22).
  t.equal(fleetTimeToReadyS([audio, ...chunks], 2, 2), 24)
  t.equal(fleetTimeToReadyS([audio, ...chunks], 1, 2), 44, 'one machine runs everything in turn')
})

t.test('the model refuses a fleet that is not a positive whole number, a negative stitch or chunk', async (t) => {
  t.throws(() => fleetTimeToReadyS([1], 0, 1), /machines/)
  t.throws(() => fleetTimeToReadyS([1], 1.5, 1), /machines/)
  t.throws(() => fleetTimeToReadyS([1], 1, -1), /stitchS/)
  t.throws(() => fleetTimeToReadyS([1, NaN], 1, 1), /partS\[1\]/)
})
