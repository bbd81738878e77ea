// The time-to-ready a fleet of N machines would see for a split video, computed from the chunk and
// stitch times measured on one shared machine (bench/README.md, "Long videos"). Pure: no I/O.

/** One measured chunk job (from the transcoder's `chunk completed` line). */
export interface ChunkTiming {
  readonly index: number
  /** CPU-seconds of its ffmpeg encode run; with ffmpegThreads 1 its time on a core of its own. */
  readonly encodeCpuS: number
  /** Wall seconds of the encode run, and of the whole job (download, probe, encode, upload). */
  readonly encodeWallS: number
  readonly jobS: number
}

/**
 * A chunk's time on a machine of its own: the encode's CPU-seconds (one thread: CPU time is the
 * time on one core) plus the rest of the job (download, probe, upload) at its measured wall time.
 */
export function dedicatedChunkS(c: ChunkTiming): number {
  return c.encodeCpuS + Math.max(0, c.jobS - c.encodeWallS)
}

/**
 * The makespan of the chunks on `machines` identical machines, handed out greedily in index order
 * (the order the queue offers them) to whichever machine is free first, plus the stitch, which
 * starts when the last chunk is done.
 */
export function fleetTimeToReadyS(chunks: readonly ChunkTiming[], machines: number, stitchS: number): number {
  if (!(Number.isInteger(machines) && machines >= 1)) throw new TypeError('machines must be an integer ≥ 1')
  if (!(Number.isFinite(stitchS) && stitchS >= 0)) throw new TypeError('stitchS must be a number ≥ 0')
  const freeAtS = new Array<number>(machines).fill(0)
  for (const c of [...chunks].sort((a, b) => a.index - b.index)) {
    let first = 0
    for (let m = 1; m < machines; m++) if ((freeAtS[m] as number) < (freeAtS[first] as number)) first = m
    freeAtS[first] = (freeAtS[first] as number) + dedicatedChunkS(c)
  }
  return Math.max(...freeAtS) + stitchS
}
