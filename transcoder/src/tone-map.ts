// HDR sources (docs/architecture.md §8): a PQ (SMPTE ST 2084) or HLG (ARIB STD-B67) source is
// tone-mapped to SDR BT.709 before the ladder is split, so every rung, the poster and the sprites
// look right on SDR screens, and the outputs are tagged BT.709 (never left tagged PQ/HLG over 8-bit
// SDR pixels). The chain is zimg (zscale) to linear light, ffmpeg's `tonemap` (Hable) in float RGB,
// and zimg back to BT.709 limited range; both filters are in Debian 12's ffmpeg.

export type DynamicRange = 'SDR' | 'PQ' | 'HLG'

/** The colour description ffprobe reports for the video stream ('' when absent). */
export interface SourceColour {
  readonly transfer: string
  readonly primaries: string
  readonly matrix: string
  readonly range: string
}

/** ffprobe's color_transfer → the dynamic range it signals (ITU-T H.273 transfer characteristics 16, 18). */
export function dynamicRangeOf(transfer: string): DynamicRange {
  if (transfer === 'smpte2084') return 'PQ'
  if (transfer === 'arib-std-b67') return 'HLG'
  return 'SDR'
}

// Values zscale accepts for its input options, by ffprobe's name; anything else (or absent) falls
// back to what HDR10/HLG masters carry: BT.2020 primaries, BT.2020 non-constant luminance, limited.
const PRIMARIES: ReadonlySet<string> = new Set(['bt709', 'bt2020', 'smpte431', 'smpte432'])
const MATRIX: Readonly<Record<string, string>> = { bt2020nc: '2020_ncl', bt2020c: '2020_cl', bt709: '709' }

/**
 * The filter chain from an HDR source frame to 8-bit SDR BT.709 4:2:0. npl=100: the SDR reference
 * white is 100 cd/m² (ITU-R BT.2408); desat=0 keeps highlights' colour instead of greying them.
 */
export function toneMapFilter(range: Exclude<DynamicRange, 'SDR'>, colour: SourceColour): string {
  const tin = range === 'PQ' ? 'smpte2084' : 'arib-std-b67'
  const pin = PRIMARIES.has(colour.primaries) ? colour.primaries : 'bt2020'
  const min = MATRIX[colour.matrix] ?? '2020_ncl'
  const rin = colour.range === 'pc' ? 'full' : 'limited'
  return [
    `zscale=tin=${tin}:pin=${pin}:min=${min}:rin=${rin}:t=linear:npl=100`,
    'format=gbrpf32le',
    'zscale=p=bt709',
    'tonemap=tonemap=hable:desat=0',
    'zscale=t=bt709:m=bt709:r=limited',
    'format=yuv420p',
  ].join(',')
}

/** Output options that tag every encoded video stream as SDR BT.709 limited range (H.273 1/1/1). */
export const SDR_BT709_TAGS: readonly string[] = Object.freeze([
  '-color_primaries',
  'bt709',
  '-color_trc',
  'bt709',
  '-colorspace',
  'bt709',
  '-color_range',
  'tv',
])
