// The time-to-ready a fleet of N machines would see for a split video, computed from the chunk,
// audio and stitch times measured on one shared machine (bench/README.md, "Long videos"). Pure: no
// I/O.

/**
 * The makespan of a split video's parts on `machines` identical machines, handed out greedily in
 * queue order (the audio job first, then the chunks by index, as the origin queues them) to
 * whichever machine is free first, each taking `partS[k]` seconds, plus the stitch, which starts
 * when the last part is done.
 */
export function fleetTimeToReadyS(partS: readonly number[], machines: number, stitchS: number): number {
  if (!(Number.isInteger(machines) && machines >= 1)) throw new TypeError('machines must be an integer ≥ 1')
  if (!(Number.isFinite(stitchS) && stitchS >= 0)) throw new TypeError('stitchS must be a number ≥ 0')
  partS.forEach((s, k) => {
    if (!(Number.isFinite(s) && s >= 0)) throw new TypeError(`partS[${k}] must be a number ≥ 0`)
  })
  const freeAtS = new Array<number>(machines).fill(0)
  for (const s of partS) {
    let first = 0
    for (let m = 1; m < machines; m++) if ((freeAtS[m] as number) < (freeAtS[first] as number)) first = m
    freeAtS[first] = (freeAtS[first] as number) + s
  }
  return Math.max(...freeAtS) + stitchS
}
