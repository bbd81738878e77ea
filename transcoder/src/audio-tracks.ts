// Every audio track the creator sent (docs/architecture.md §8): each audio stream of the source
// becomes its own rendition in the audio group, labelled from the stream's tags. Pure: the plan is
// made from ffprobe's JSON; ffmpeg-args.ts encodes it, master.ts and dash.ts describe it.
import type { FfprobeStream } from '../../shared/media/index.js'
import { AUDIO_RENDITION } from './ffmpeg-args.js'

/** One audio stream of the source as ffprobe described it. */
export interface AudioTrack {
  /** Absolute input stream index. */
  readonly streamIndex: number
  /** BCP-47 (RFC 5646) from the stream's language tag; undefined for none or `und`. */
  readonly language: string | undefined
  /** The stream's title tag, made safe for an HLS quoted-string; undefined for none. */
  readonly title: string | undefined
  readonly channels: number
  /** The container marks it as the default track. */
  readonly isDefault: boolean
}

/** One audio rendition to encode and publish. */
export interface AudioRenditionPlan {
  /** Folder and rendition name: `audio` for a single track, else `audio_<lang>` or `audio_<n>`. */
  readonly name: string
  readonly streamIndex: number
  readonly language: string | undefined
  /** HLS NAME / DASH Label: the title tag, else the language's own name, else "Audio <n>". */
  readonly label: string
  /** Exactly one rendition is the default (RFC 8216 §4.3.4.1.1). */
  readonly isDefault: boolean
}

/**
 * A language tag as BCP-47: ISO 639-2 codes (what containers carry: `eng`, `spa`, `ger`) become
 * their canonical ISO 639-1 form (`en`, `es`, `de`) by CLDR's alias data (UTS #35). `und`,
 * empty and malformed tags give undefined.
 */
export function bcp47(tag: string | undefined): string | undefined {
  if (tag === undefined) return undefined
  const trimmed = tag.trim().replace(/_/g, '-')
  if (trimmed === '' || /^(und|mis|zxx|mul)$/i.test(trimmed)) return undefined
  try {
    const [canonical] = Intl.getCanonicalLocales(trimmed)
    return canonical === undefined || canonical === 'und' ? undefined : canonical
  } catch {
    return undefined
  }
}

/** A tag value usable inside an HLS quoted-string (RFC 8216 §4.2: no `"`, CR or LF) and XML. */
function safeLabel(text: string | undefined): string | undefined {
  if (text === undefined) return undefined
  const clean = text
    .replace(/[\u0000-\u001f\u007f"<>&]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
  return clean === '' ? undefined : [...clean].slice(0, 64).join('')
}

/** The language's name in that language ("English", "Español"), or undefined if ICU has none. */
export function languageName(language: string | undefined): string | undefined {
  if (language === undefined) return undefined
  try {
    const name = new Intl.DisplayNames([language], { type: 'language', fallback: 'none' }).of(language)
    if (name === undefined || name === '') return undefined
    return safeLabel(name.charAt(0).toLocaleUpperCase(language) + name.slice(1))
  } catch {
    return undefined
  }
}

/** The audio streams of a probe, in stream order. */
export function audioTracksFromProbe(streams: readonly FfprobeStream[]): AudioTrack[] {
  return streams
    .filter((s) => s.codec_type === 'audio')
    .map((s) => {
      const disposition = s.disposition as Record<string, number> | undefined
      return {
        streamIndex: s.index ?? 0,
        language: bcp47(s.tags?.['language'] ?? s.tags?.['LANGUAGE']),
        title: safeLabel(s.tags?.['title'] ?? s.tags?.['TITLE']),
        channels: s.channels ?? 0,
        isDefault: disposition?.['default'] === 1,
      }
    })
}

/**
 * Renditions for the source's audio tracks. A single track keeps the name `audio` (the paths of
 * every video published before multi-track support). With several, each is named by language
 * (`audio_en`, a second English track `audio_en_2`) or by position (`audio_3`). The default is the
 * first track the container marks default, else the first track.
 */
export function planAudioRenditions(tracks: readonly AudioTrack[]): AudioRenditionPlan[] {
  if (tracks.length === 0) return []
  const defaultIndex = Math.max(
    0,
    tracks.findIndex((t) => t.isDefault),
  )
  const used = new Set<string>()
  return tracks.map((t, i) => {
    let name = AUDIO_RENDITION
    if (tracks.length > 1) {
      const base = t.language ? `${AUDIO_RENDITION}_${t.language}` : `${AUDIO_RENDITION}_${i + 1}`
      name = base
      for (let n = 2; used.has(name); n++) name = `${base}_${n}`
    }
    used.add(name)
    return {
      name,
      streamIndex: t.streamIndex,
      language: t.language,
      label: t.title ?? languageName(t.language) ?? (tracks.length > 1 ? `Audio ${i + 1}` : AUDIO_RENDITION),
      isDefault: i === defaultIndex,
    }
  })
}
