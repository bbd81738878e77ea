// The last gate before publishing: what is on disk must be playable as a whole. Every check here
// reads the final files (playlists as written, sizes from stat) so it also catches a bug in the
// code that produced them. Any failure is ERR_TRANSCODE_INVALID_OUTPUT (not retryable: the same
// input and code would produce the same output).
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { VcdnError } from '../../shared/errors/index.js'
import { parseMaster, parseMedia, type MediaPlaylistInfo } from '../../shared/hls/index.js'
import { SEGMENT_S } from './ffmpeg-args.js'
import { bandwidthOf, type MeasuredRendition } from './measure.js'

export const BOUNDARY_TOLERANCE_S = 0.001

export interface ValidateOptions {
  readonly outDir: string
  readonly video: readonly MeasuredRendition[]
  /** One audio rendition, every audio rendition, or null for video only. */
  readonly audio: MeasuredRendition | readonly MeasuredRendition[] | null
  /** Extra files that must exist and be non-empty (thumbnails, manifest.mpd). */
  readonly requiredFiles?: readonly string[]
}

function fail(detail: string, cause?: unknown): never {
  throw new VcdnError('ERR_TRANSCODE_INVALID_OUTPUT', detail, cause === undefined ? undefined : { cause })
}

async function readText(path: string, label: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    return fail(`${label} is missing`, err)
  }
}

async function sizeOf(path: string, label: string): Promise<number> {
  const st = await stat(path).catch((err: unknown) => fail(`${label} is missing`, err))
  if (st.size === 0) fail(`${label} is empty`)
  return st.size
}

async function checkMediaPlaylist(
  outDir: string,
  name: string,
): Promise<{ playlist: MediaPlaylistInfo; sizes: number[] }> {
  const label = `${name}/index.m3u8`
  let playlist: MediaPlaylistInfo
  try {
    playlist = parseMedia(await readText(join(outDir, name, 'index.m3u8'), label))
  } catch (err) {
    if (err instanceof VcdnError) throw err
    return fail(`${label}: ${(err as Error).message}`, err)
  }
  // RFC 8216 §4.3.2.5 / §4.3.3.5 / §4.3.3.4 / §4.3.5.1: the tags a CMAF VOD playlist must carry.
  if (playlist.version !== 7) fail(`${label}: EXT-X-VERSION is ${playlist.version}, want 7`)
  if (playlist.mapUri !== 'init.mp4') fail(`${label}: EXT-X-MAP is ${playlist.mapUri}, want init.mp4`)
  if (!playlist.isIndependentSegments) fail(`${label}: no EXT-X-INDEPENDENT-SEGMENTS`)
  if (playlist.playlistType !== 'VOD') fail(`${label}: EXT-X-PLAYLIST-TYPE is not VOD`)
  if (!playlist.isEndList) fail(`${label}: no EXT-X-ENDLIST`)
  await sizeOf(join(outDir, name, 'init.mp4'), `${name}/init.mp4`)
  const sizes: number[] = []
  for (const [i, s] of playlist.segments.entries()) {
    const want = `seg_${String(i + 1).padStart(5, '0')}.m4s`
    if (s.uri !== want) fail(`${label}: segment ${i + 1} is ${s.uri}, want ${want}`)
    sizes.push(await sizeOf(join(outDir, name, s.uri), `${name}/${s.uri}`))
  }
  return { playlist, sizes }
}

export async function validateOutput(opts: ValidateOptions): Promise<void> {
  const { outDir } = opts
  if (opts.video.length === 0) fail('no video rendition')
  const masterText = await readText(join(outDir, 'master.m3u8'), 'master.m3u8')
  let master
  try {
    master = parseMaster(masterText)
  } catch (err) {
    return fail(`master.m3u8: ${(err as Error).message}`, err)
  }
  if (master.version !== 7) fail('master.m3u8: EXT-X-VERSION is not 7')
  if (master.variants.length !== opts.video.length)
    fail(`master.m3u8 lists ${master.variants.length} variants, want ${opts.video.length}`)
  for (let i = 1; i < master.variants.length; i++) {
    if ((master.variants[i]?.bandwidth ?? 0) < (master.variants[i - 1]?.bandwidth ?? 0))
      fail('master.m3u8: variants are not sorted by bandwidth')
  }

  const audio = opts.audio === null ? [] : 'segments' in opts.audio ? [opts.audio] : opts.audio
  // BANDWIDTH must cover the highest-rate audio rendition a variant may play with (§4.3.4.2).
  let audioPeak = 0
  for (const rendition of audio) {
    const { playlist, sizes } = await checkMediaPlaylist(outDir, rendition.name)
    audioPeak = Math.max(
      audioPeak,
      bandwidthOf(
        playlist.segments.map((s, i) => ({ bytes: sizes[i] ?? 0, durationS: s.durationS })),
        SEGMENT_S,
      ).peak,
    )
    if (!master.audio.some((a) => a.uri === `${rendition.name}/index.m3u8`))
      fail(`master.m3u8 has no EXT-X-MEDIA for the audio rendition ${rendition.name}`)
  }
  if (audio.length === 0 && master.audio.length > 0) fail('master.m3u8 names an audio group but there is no audio')

  const reference = opts.video[0] as MeasuredRendition
  for (const rendition of opts.video) {
    const { name } = rendition
    const { playlist, sizes } = await checkMediaPlaylist(outDir, name)
    const variant = master.variants.find((v) => v.uri === `${name}/index.m3u8`)
    if (!variant) fail(`master.m3u8 has no variant for ${name}`)
    if (audio.length > 0 && variant.audioGroupId === undefined) fail(`master.m3u8: variant ${name} has no AUDIO group`)

    // Boundaries identical across rungs, from the playlists and from the packets, so a player can
    // switch at any segment boundary (HLS authoring: aligned segments; DASH segmentAlignment).
    if (
      playlist.segments.length !== reference.segments.length ||
      rendition.segments.length !== reference.segments.length
    ) {
      fail(`${name} has ${playlist.segments.length} segments, ${reference.name} has ${reference.segments.length}`)
    }
    for (const [i, seg] of rendition.segments.entries()) {
      const ref = reference.segments[i] as MeasuredRendition['segments'][number]
      const extinf = playlist.segments[i]?.durationS ?? 0
      if (Math.abs(extinf - ref.extinfS) > BOUNDARY_TOLERANCE_S)
        fail(`${name}/${seg.uri}: EXTINF ${extinf} differs from ${reference.name} (${ref.extinfS})`)
      const start = seg.startTs / rendition.timescale
      const refStart = ref.startTs / reference.timescale
      if (Math.abs(start - refStart) > BOUNDARY_TOLERANCE_S)
        fail(`${name}/${seg.uri}: starts at ${start}s, ${reference.name} at ${refStart}s`)
      const end = (seg.startTs + seg.durationTs) / rendition.timescale
      const refEnd = (ref.startTs + ref.durationTs) / reference.timescale
      if (Math.abs(end - refEnd) > BOUNDARY_TOLERANCE_S)
        fail(`${name}/${seg.uri}: ends at ${end}s, ${reference.name} at ${refEnd}s`)
      if (!seg.startsWithKeyframe) fail(`${name}/${seg.uri}: does not start with a keyframe`)
      if (seg.bytes !== sizes[i]) fail(`${name}/${seg.uri}: changed size after it was measured`)
    }
    // RFC 8216 §4.3.4.2: BANDWIDTH must not be below the peak segment bit rate of the variant
    // (its video plus the audio played with it).
    const peak =
      bandwidthOf(
        playlist.segments.map((s, i) => ({ bytes: sizes[i] ?? 0, durationS: s.durationS })),
        SEGMENT_S,
      ).peak + audioPeak
    if (variant.bandwidth < peak)
      fail(`master.m3u8: BANDWIDTH ${variant.bandwidth} of ${name} is below its measured peak ${peak}`)
  }
  for (const file of opts.requiredFiles ?? []) await sizeOf(join(outDir, file), file)
}
