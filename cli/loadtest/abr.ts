// The simulated player's adaptive bitrate rule, simpler than hls.js's (two EWMAs of throughput)
// but with its shape: start low, climb one rung at a time only when throughput has stayed well
// above the next rung, drop at once when it falls below the current one. With time compressed
// by `speed`, a rung needs `speed` times its BANDWIDTH to keep up, so every comparison scales.

/** Throughput over the next rung's need that counts toward moving up. */
export const UP_FACTOR = 1.5
/** Consecutive segments above UP_FACTOR before moving up ("sustained"). */
export const UP_STREAK = 2

export interface AbrState {
  /** Index into the ascending BANDWIDTH list. */
  readonly level: number
  /** Consecutive segments measured above UP_FACTOR × the next rung. */
  readonly streak: number
}

/** A middle-to-low rung, as players start before they have measured anything. */
export function startLevel(rungs: number): number {
  return Math.max(0, Math.floor((rungs - 1) / 2))
}

/**
 * The rung for the next segment after one was fetched at `sampleBps` (body bits over fetch
 * time). `bandwidths` ascending (RFC 8216 §4.3.4.2 BANDWIDTH, bits/s).
 */
export function nextLevel(bandwidths: readonly number[], state: AbrState, sampleBps: number, speed: number): AbrState {
  const need = (level: number): number => (bandwidths[level] ?? 0) * speed
  if (state.level > 0 && sampleBps < need(state.level)) {
    let level = state.level - 1
    while (level > 0 && need(level) > sampleBps) level--
    return { level, streak: 0 }
  }
  if (state.level < bandwidths.length - 1 && sampleBps > UP_FACTOR * need(state.level + 1)) {
    const streak = state.streak + 1
    return streak >= UP_STREAK ? { level: state.level + 1, streak: 0 } : { level: state.level, streak }
  }
  return { level: state.level, streak: 0 }
}
