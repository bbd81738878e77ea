// The DASH side of query-token rewriting (docs/architecture.md §3; see rewrite.ts for why): the
// MPD's URLs get the token appended in place, every other byte kept. The MPD is XML, edited only
// where URLs live (ISO/IEC 23009-1 §5.6 BaseURL, §5.3.9 segment information): BaseURL text, the
// SegmentTemplate's media, initialization and index templates, and the SegmentList/SegmentBase
// SegmentURL@media/@index, Initialization@sourceURL and RepresentationIndex@sourceURL. A template
// is a URL with $…$ identifiers (§5.3.9.4.4), so the parameter is appended to the template itself.
import { assertAppendableParam, PlaylistRewriteError, withQueryParam } from './rewrite.js'

/** Element name (any namespace prefix) → its attributes that hold a URL or URL template. */
const URL_ATTRIBUTES: ReadonlyMap<string, readonly string[]> = new Map([
  ['SegmentTemplate', ['media', 'initialization', 'index']],
  ['SegmentURL', ['media', 'index']],
  ['Initialization', ['sourceURL']],
  ['RepresentationIndex', ['sourceURL']],
])

const START_TAG = /<(?:[A-Za-z_][\w.-]*:)?(SegmentTemplate|SegmentURL|Initialization|RepresentationIndex)\b([^>]*)>/g
const BASE_URL = /(<(?:[A-Za-z_][\w.-]*:)?BaseURL\b[^>]*>)([^<]*)(<\/(?:[A-Za-z_][\w.-]*:)?BaseURL\s*>)/g
const ATTRIBUTE = /(\s)([A-Za-z_][\w.-]*)(\s*=\s*)("[^"]*"|'[^']*')/g

/** A URL as XML text (entities as written), with `param` appended; surrounding blanks kept. */
function rewriteXmlUrl(text: string, param: string, host: string | null): string {
  const lead = text.length - text.trimStart().length
  const trimmed = text.trim()
  if (trimmed.length === 0) return text
  // Inside XML a '&' is written '&amp;'; the host check reads the URL as written, which is exact
  // for the authority (an entity there is not a host name any player resolves).
  const rewritten = withQueryParam(trimmed, param, host, '&amp;')
  return text.slice(0, lead) + rewritten + text.slice(lead + trimmed.length)
}

/**
 * A DASH MPD with `param` appended to every URL of this host (see the file comment). Throws
 * PlaylistRewriteError when `text` is not an MPD.
 */
export function rewriteDashManifest(text: string, param: string, host: string | null): string {
  assertAppendableParam(param)
  if (!/<(?:[A-Za-z_][\w.-]*:)?MPD\b/.test(text)) throw new PlaylistRewriteError('not a DASH MPD: no MPD element')
  const withBase = text.replace(
    BASE_URL,
    (_all, open: string, url: string, close: string) => open + rewriteXmlUrl(url, param, host) + close,
  )
  return withBase.replace(START_TAG, (tag: string, element: string, attrs: string) => {
    const names = URL_ATTRIBUTES.get(element) as readonly string[]
    const rewritten = attrs.replace(
      ATTRIBUTE,
      (all: string, space: string, name: string, eq: string, quoted: string) => {
        if (!names.includes(name)) return all
        const quote = quoted.charAt(0)
        return `${space}${name}${eq}${quote}${rewriteXmlUrl(quoted.slice(1, -1), param, host)}${quote}`
      },
    )
    return tag.slice(0, tag.length - attrs.length - 1) + rewritten + '>'
  })
}
