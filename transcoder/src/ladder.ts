// The bitrate ladder (docs/architecture.md §8). Each rung is a bounding box (long × short side)
// that applies to either orientation, with the bit rate that caps its CRF encode.

export interface LadderRung {
  readonly name: string
  /** Short side of the box (the "p" number). */
  readonly short: number
  /** Long side of the box (16:9). */
  readonly long: number
  readonly maxrateBps: number
}

export const LADDER: readonly LadderRung[] = Object.freeze([
  { name: '240p', short: 240, long: 426, maxrateBps: 400_000 },
  { name: '360p', short: 360, long: 640, maxrateBps: 800_000 },
  { name: '480p', short: 480, long: 854, maxrateBps: 1_500_000 },
  { name: '720p', short: 720, long: 1280, maxrateBps: 3_000_000 },
  { name: '1080p', short: 1080, long: 1920, maxrateBps: 6_000_000 },
  { name: '1440p', short: 1440, long: 2560, maxrateBps: 10_000_000 },
  { name: '2160p', short: 2160, long: 3840, maxrateBps: 20_000_000 },
])

export interface Rendition {
  readonly name: string
  readonly width: number
  readonly height: number
  readonly maxrateBps: number
}

function even(n: number): number {
  return Math.max(2, Math.round(n / 2) * 2)
}

function evenFloor(n: number): number {
  return Math.max(2, Math.floor(n / 2) * 2)
}

/**
 * The renditions for a source of this display size, lowest first. A rung is used when fitting the
 * source into its box does not upscale, which includes every rung whose short side is ≤ the
 * source's short side (and, for sources wider than 16:9, the rung whose long side matches: a
 * 1920×800 scope source gets a 1920×800 "1080p"). Sizes keep the aspect ratio and are even
 * (4:2:0 chroma needs even dimensions). A source smaller than the lowest box gets one rung at its
 * own size, so there is always at least one.
 */
export function buildLadder(source: { readonly width: number; readonly height: number }): Rendition[] {
  const { width, height } = source
  if (!(Number.isInteger(width) && width > 0))
    throw new TypeError(`source.width must be a positive integer, got ${width}`)
  if (!(Number.isInteger(height) && height > 0))
    throw new TypeError(`source.height must be a positive integer, got ${height}`)
  const isPortrait = height > width
  const srcLong = Math.max(width, height)
  const srcShort = Math.min(width, height)
  const out: Rendition[] = []
  for (const rung of LADDER) {
    const scale = Math.min(rung.long / srcLong, rung.short / srcShort)
    if (scale > 1) continue
    // Never exceed the source (a 1-pixel overshoot from rounding an odd dimension up).
    const long = Math.min(even(srcLong * scale), evenFloor(srcLong))
    const short = Math.min(even(srcShort * scale), evenFloor(srcShort))
    out.push({
      name: rung.name,
      width: isPortrait ? short : long,
      height: isPortrait ? long : short,
      maxrateBps: rung.maxrateBps,
    })
  }
  if (out.length === 0) {
    const lowest = LADDER[0] as LadderRung
    out.push({ name: lowest.name, width: evenFloor(width), height: evenFloor(height), maxrateBps: lowest.maxrateBps })
  }
  return out
}
