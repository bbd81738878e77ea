// Playlist URI rewriting for query tokens (docs/architecture.md §3): a player that cannot carry a
// path token sends `?token=…`, and a query is not inherited by relative references (RFC 3986
// §5.2.2 takes the reference's own query), so the edge appends the token to every URI of a
// playlist it serves under one. The rewrite edits the URIs in place, line by line, and keeps every
// other byte. Not through hls-parser's parse + stringify: stringify reformats the tags it knows
// (`#EXTINF:4.000000,` becomes `#EXTINF:4,`, tags move) and drops the ones it does not, and its
// lenient parse accepts any text, so it would add a reformatting, not a check. The grammar used is
// RFC 8216's own (§4.1 lines, §4.2 attribute lists); the tests check the result with hls-parser.

/**
 * What a token parameter may contain to be appended verbatim: RFC 3986 query characters without
 * `&` (it would end the parameter), `#` (a fragment), `"` (it would end an HLS quoted-string,
 * RFC 8216 §4.2), `<` `'` (XML), and `$` (a DASH template identifier, ISO/IEC 23009-1 §5.3.9.4.4).
 */
const PARAM = /^[A-Za-z0-9\-._~!*()+,;=:@/?%]+$/

/** True when `param` (`name=value`, as received) can be appended to playlist URIs unchanged. */
export function isAppendableParam(param: string): boolean {
  return param.length > 0 && PARAM.test(param)
}

export function assertAppendableParam(param: string): void {
  if (!isAppendableParam(param)) throw new TypeError(`query parameter ${JSON.stringify(param)} cannot be appended`)
}

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/

/**
 * `uri` with `param` appended to its query (before any fragment), when it names a resource of this
 * host: a relative reference, or an absolute URI whose authority is `host` (the request's Host).
 * A URI on another host, or one without an authority (`data:`, `skd:`), is returned unchanged.
 * `separator` joins a parameter to an existing query (`&`, or `&amp;` inside XML).
 */
export function withQueryParam(uri: string, param: string, host: string | null, separator = '&'): string {
  if (uri.length === 0) return uri
  let authority = -1
  if (uri.startsWith('//')) {
    authority = 2
  } else {
    const scheme = SCHEME.exec(uri)
    if (scheme !== null) {
      if (!uri.startsWith('//', scheme[0].length)) return uri
      authority = scheme[0].length + 2
    }
  }
  if (authority !== -1) {
    if (host === null) return uri
    let end = authority
    while (end < uri.length && !'/?#'.includes(uri.charAt(end))) end++
    if (uri.slice(authority, end).toLowerCase() !== host.toLowerCase()) return uri
  }
  const hash = uri.indexOf('#')
  const body = hash === -1 ? uri : uri.slice(0, hash)
  const fragment = hash === -1 ? '' : uri.slice(hash)
  const joiner = !body.includes('?') ? '?' : body.endsWith('?') || body.endsWith(separator) ? '' : separator
  return `${body}${joiner}${param}${fragment}`
}

/**
 * The URI attribute of a tag's attribute list (RFC 8216 §4.2: `NAME=value` pairs separated by
 * commas, a quoted-string never contains `"` or a line break), rewritten; other attributes kept.
 */
function rewriteUriAttribute(line: string, param: string, host: string | null): string {
  const colon = line.indexOf(':')
  if (colon === -1) return line
  let i = colon + 1
  let out = line.slice(0, i)
  while (i < line.length) {
    const eq = line.indexOf('=', i)
    if (eq === -1) return out + line.slice(i)
    const name = line.slice(i, eq)
    let end: number
    if (line.charAt(eq + 1) === '"') {
      const close = line.indexOf('"', eq + 2)
      if (close === -1) return out + line.slice(i)
      end = close + 1
      if (name === 'URI') {
        const uri = line.slice(eq + 2, close)
        out += `${name}="${withQueryParam(uri, param, host)}"`
      } else {
        out += line.slice(i, end)
      }
    } else {
      const comma = line.indexOf(',', eq + 1)
      end = comma === -1 ? line.length : comma
      out += line.slice(i, end)
    }
    // The separator (and anything malformed up to it) is kept as it was.
    const next = line.indexOf(',', end)
    if (next === -1) return out + line.slice(end)
    out += line.slice(end, next + 1)
    i = next + 1
  }
  return out
}

/**
 * An HLS playlist (multivariant or media, RFC 8216) with `param` appended to every URI of this
 * host: the URI lines (media segments, variant streams: §4.3.2, §4.3.4.2) and the URI attribute of
 * every tag that has one (EXT-X-MAP, EXT-X-KEY, EXT-X-SESSION-KEY, EXT-X-MEDIA,
 * EXT-X-I-FRAME-STREAM-INF, EXT-X-SESSION-DATA, and the low-latency EXT-X-PART,
 * EXT-X-PRELOAD-HINT and EXT-X-RENDITION-REPORT). Line endings and everything else are kept.
 * Throws PlaylistRewriteError when `text` is not an HLS playlist.
 */
export function rewriteHlsPlaylist(text: string, param: string, host: string | null): string {
  assertAppendableParam(param)
  assertPlaylist(text)
  const lines = text.split('\n')
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n] as string
    if (line.length === 0 || line === '\r') continue
    if (line.startsWith('#')) {
      // RFC 8216 §4.1: lines starting with '#EXT' are tags, other '#' lines comments.
      if (line.startsWith('#EXT') && line.includes('URI="')) lines[n] = rewriteUriAttribute(line, param, host)
      continue
    }
    const isCr = line.endsWith('\r')
    const uri = isCr ? line.slice(0, -1) : line
    lines[n] = withQueryParam(uri, param, host) + (isCr ? '\r' : '')
  }
  return lines.join('\n')
}

export class PlaylistRewriteError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'PlaylistRewriteError'
  }
}

function assertPlaylist(text: string): void {
  // RFC 8216 §4.3.1.1: the first line is #EXTM3U (a UTF-8 BOM is not allowed, §4.1).
  if (!text.startsWith('#EXTM3U')) throw new PlaylistRewriteError('not an HLS playlist: no #EXTM3U')
}
