// The segment lists of a DASH MPD, for the edge's prefetcher (docs/architecture.md §6): each
// Representation's `SegmentTemplate` with `$Number$` addressing (ISO/IEC 23009-1 §5.3.9.4), its
// count from the `SegmentTimeline` (§5.3.9.6: one segment per `S`, plus `@r` repeats) or from
// `@duration` over `MPD@mediaPresentationDuration`. Read with bounded regular expressions, not a
// full XML parser: the MPDs here are the transcoder's (one per video, SegmentTimeline), and an MPD
// this reader does not understand (`$Time$`, `BaseURL`, negative repeats) yields no list, so the
// edge just does not prefetch for it.

/** Segments listed per representation at most (a long VOD at 2 s per segment is ~10 000). */
const SEGMENTS_MAX = 100_000

const attr = (attrs: string, name: string): string | undefined => {
  const m = new RegExp(`\\b${name}="([^"]*)"`).exec(attrs)
  return m?.[1]
}

const xmlText = (s: string): string =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')

/** ISO 8601 duration as xs:duration in an MPD (`PT1H2M3.5S`), in seconds, or null. */
export function isoDurationS(text: string): number | null {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(text)
  if (m === null || text === 'P' || text.endsWith('T')) return null
  return Number(m[1] ?? 0) * 86400 + Number(m[2] ?? 0) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0)
}

/** The media URI of segment `n` from a template, or null for identifiers this reader cannot fill. */
function expand(template: string, id: string, bandwidth: string | undefined, n: number): string | null {
  let isOk = true
  const out = template.replace(
    /\$(RepresentationID|Number|Bandwidth|Time)?(%0(\d{1,2})d)?\$/g,
    (_m, name, _f, width) => {
      if (name === undefined) return '$'
      if (name === 'RepresentationID') return id
      const value = name === 'Number' ? String(n) : name === 'Bandwidth' && bandwidth !== undefined ? bandwidth : null
      if (value === null) {
        isOk = false
        return ''
      }
      return width === undefined ? value : value.padStart(Number(width), '0')
    },
  )
  return isOk ? out : null
}

/** How many segments a SegmentTemplate lists, or null when it cannot say. */
function segmentCount(template: string, body: string, presentationS: number | null): number | null {
  const timeline = /<SegmentTimeline\b[^>]*>([\s\S]*?)<\/SegmentTimeline>/.exec(body)
  if (timeline !== null) {
    let count = 0
    for (const s of (timeline[1] as string).matchAll(/<S\b([^>]*?)\/?>/g)) {
      const r = Number(attr(s[1] as string, 'r') ?? '0')
      if (!Number.isInteger(r) || r < 0) return null
      count += 1 + r
      if (count > SEGMENTS_MAX) return null
    }
    return count
  }
  const duration = Number(attr(template, 'duration'))
  const timescale = Number(attr(template, 'timescale') ?? '1')
  if (!(duration > 0) || !(timescale > 0) || presentationS === null) return null
  const count = Math.ceil((presentationS * timescale) / duration)
  return count > 0 && count <= SEGMENTS_MAX ? count : null
}

/**
 * The media segment URIs of every Representation of an MPD, in order, as written (relative to
 * the MPD). Never throws; what it does not understand is left out.
 */
export function dashSegmentLists(mpd: string): string[][] {
  if (mpd.includes('<BaseURL')) return []
  const mpdTag = /<MPD\b([^>]*)>/.exec(mpd)
  const total = mpdTag === null ? undefined : attr(mpdTag[1] as string, 'mediaPresentationDuration')
  const presentationS = total === undefined ? null : isoDurationS(total)
  const lists: string[][] = []
  for (const set of mpd.matchAll(/<AdaptationSet\b[^>]*>([\s\S]*?)<\/AdaptationSet>/g)) {
    const setBody = set[1] as string
    // A template on the AdaptationSet applies to Representations that have none (§5.3.9.1).
    const shared = /<SegmentTemplate\b([^>]*?)(?:\/>|>([\s\S]*?)<\/SegmentTemplate>)/.exec(
      setBody.replace(/<Representation\b[\s\S]*?(?:<\/Representation>|\/>)/g, ''),
    )
    for (const rep of setBody.matchAll(/<Representation\b([^>]*?)(?:\/>|>([\s\S]*?)<\/Representation>)/g)) {
      const repAttrs = rep[1] as string
      const own = /<SegmentTemplate\b([^>]*?)(?:\/>|>([\s\S]*?)<\/SegmentTemplate>)/.exec(rep[2] ?? '')
      const template = own ?? shared
      const id = attr(repAttrs, 'id')
      if (template === null || id === undefined) continue
      const templateAttrs = template[1] as string
      const media = attr(templateAttrs, 'media')
      const count = segmentCount(templateAttrs, template[2] ?? '', presentationS)
      if (media === undefined || count === null) continue
      const start = Number(attr(templateAttrs, 'startNumber') ?? '1')
      if (!Number.isInteger(start) || start < 0) continue
      const list: string[] = []
      for (let n = start; n < start + count; n++) {
        const uri = expand(xmlText(media), xmlText(id), attr(repAttrs, 'bandwidth'), n)
        if (uri === null) break
        list.push(uri)
      }
      if (list.length > 0) lists.push(list)
    }
  }
  return lists
}
