// Cross-origin access for media and for the coded errors a viewer can meet (the Fetch standard's
// CORS protocol): a player on a website's own origin fetches playlists and segments from the edge.
// Every header block is rendered once, when the server is built: a response pays one string that
// already exists (appended to its pre-rendered head), never a per-request allocation.

/** The server option: which origins may read responses. Empty: CORS off (no headers at all). */
export interface CorsOptions {
  /** `['*']` for any origin, or exact origins (`https://www.example.com`) echoed when they match. */
  origins: readonly string[]
  /** How long a browser may reuse a preflight answer (Access-Control-Max-Age). */
  maxAgeS?: number
}

export const DEFAULT_CORS_MAX_AGE_S = 86_400

/**
 * Request headers a player sends: Range (hls.js byte ranges, RFC 9110 §14.2), the conditionals a
 * browser cache adds (§13.1), and CMCD's header transmission (CTA-5004 §2.2).
 */
const ALLOW_HEADERS = [
  'Range',
  'If-Range',
  'If-None-Match',
  'If-Modified-Since',
  'CMCD-Request',
  'CMCD-Object',
  'CMCD-Status',
  'CMCD-Session',
].join(', ')

/**
 * Response headers a script may read beyond the safelisted ones: Content-Length (listed for older
 * browsers), Content-Range and Accept-Ranges (players that fetch ranges), Age and X-Cache
 * (players and dashboards reporting cache outcome), ETag.
 */
const EXPOSE_HEADERS = ['Content-Length', 'Content-Range', 'Accept-Ranges', 'Age', 'ETag', 'X-Cache'].join(', ')

export const ALLOW_METHODS = 'GET, HEAD, OPTIONS'

/**
 * Response fields CORS owns. A server applying CORS drops these from the maps it is given (an
 * upstream's own CORS answer stored with the object), so a browser never sees two values.
 */
export const CORS_FIELDS: ReadonlySet<string> = new Set([
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'access-control-allow-methods',
  'access-control-allow-headers',
  'access-control-expose-headers',
  'access-control-max-age',
  'timing-allow-origin',
])

/**
 * The pre-rendered blocks of one server. Each block is the text of header field lines joined by
 * CRLF without a leading or trailing CRLF, the shape the adapter appends to a head.
 */
export interface CorsBlocks {
  /** With `*`: the block of every response. Null for a list of origins (chosen per request). */
  readonly any: string | null
  /** With a list: the block for each allowed origin (the origin echoed, Vary: Origin). */
  readonly byOrigin: ReadonlyMap<string, string>
  /** With a list: the block for a request from any other origin, or none (Vary: Origin alone). */
  readonly other: string
  /** The preflight answer's extra fields (methods, headers, max-age), without the origin block. */
  readonly preflight: string
}

/** The problems with a `cors.origins` list (empty when none), naming `at`. */
export function corsProblems(origins: readonly string[], at = 'cors.origins'): string[] {
  const problems: string[] = []
  if (origins.includes('*') && origins.length > 1) problems.push(`${at}: "*" must be the only entry`)
  origins.forEach((origin, i) => {
    if (origin === '*') return
    // An origin is scheme://host[:port], serialised without a path (RFC 6454 §6.2).
    if (!/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$|^https?:\/\/\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(origin)) {
      problems.push(`${at}[${i}] must be "*" or an origin like https://www.example.com (got ${JSON.stringify(origin)})`)
    }
  })
  return problems
}

/** Render every block for `opts` once; null when CORS is off. */
export function renderCors(opts: CorsOptions | undefined): CorsBlocks | null {
  if (opts === undefined || opts.origins.length === 0) return null
  const maxAgeS = opts.maxAgeS ?? DEFAULT_CORS_MAX_AGE_S
  const preflight =
    `access-control-allow-methods: ${ALLOW_METHODS}\r\n` +
    `access-control-allow-headers: ${ALLOW_HEADERS}\r\n` +
    `access-control-max-age: ${maxAgeS}`
  const exposed = `access-control-expose-headers: ${EXPOSE_HEADERS}`
  if (opts.origins.includes('*')) {
    // Resource Timing (W3C) reads transfer timings of a cross-origin fetch only with this field.
    return {
      any: `access-control-allow-origin: *\r\n${exposed}\r\ntiming-allow-origin: *`,
      byOrigin: new Map(),
      other: '',
      preflight,
    }
  }
  // A response that depends on the Origin says so, allowed or not (Fetch §3.2.5 "CORS protocol
  // and HTTP caches"), so a shared cache never serves one origin's answer to another.
  const byOrigin = new Map<string, string>()
  for (const origin of opts.origins) {
    byOrigin.set(
      origin.toLowerCase(),
      `vary: Origin\r\naccess-control-allow-origin: ${origin}\r\n${exposed}\r\ntiming-allow-origin: ${origin}`,
    )
  }
  return { any: null, byOrigin, other: 'vary: Origin', preflight }
}

/** The block for a request from `origin` (the Origin field, '' when absent). */
export function corsBlockFor(blocks: CorsBlocks, origin: string): string {
  if (blocks.any !== null) return blocks.any
  return (origin === '' ? undefined : blocks.byOrigin.get(origin.toLowerCase())) ?? blocks.other
}
