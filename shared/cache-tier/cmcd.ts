// Common Media Client Data (CTA-5004): what a player says about itself and its next request, sent
// as four header fields (CMCD-Request, CMCD-Object, CMCD-Status, CMCD-Session) or as one `CMCD=`
// query parameter. Each carries a Structured Field dictionary (RFC 8941 §3.2): `key=value` members
// separated by commas; a bare key is boolean true, strings are quoted, tokens bare. The edge logs
// the fields a CDN uses (docs/architecture.md §10.3) and prefetches the named next object (§6).
//
// Everything here comes from a client: parsing never throws, reads at most CMCD_MAX_CHARS per
// field and CMCD_MAX_MEMBERS members, keeps only the keys below with their types and bounds, and
// skips any member it cannot read instead of giving up on the rest.

/** The CMCD keys the tier reads; anything else a player sends is ignored. */
export interface Cmcd {
  /** Session id (CTA-5004: at most 64 characters). */
  sid?: string
  /** Content id (at most 64 characters). */
  cid?: string
  /** Encoded bitrate, kbps. */
  br?: number
  /** Buffer length, ms. */
  bl?: number
  /** Buffer starvation since the last request. */
  bs?: boolean
  /** Startup: the object is needed urgently. */
  su?: boolean
  /** Measured throughput, kbps. */
  mtp?: number
  /** Object type: m a v av i c tt k o. */
  ot?: string
  /** Next object request: a URL-encoded path relative to this request (decoded here). */
  nor?: string
  /** Next range request: `start-end` bytes of the next object (or of this one without nor). */
  nrr?: string
}

/** Longest field (or decoded query value) read at all; real CMCD is a few hundred characters. */
export const CMCD_MAX_CHARS = 4096
/** Members read per field; CTA-5004 defines 19 keys. */
export const CMCD_MAX_MEMBERS = 64
const ID_MAX_CHARS = 64
/** A key path's bound (shared/namespace MAX_KEY_BYTES). */
const NOR_MAX_CHARS = 1024
const NRR_MAX_CHARS = 64
/** Integers beyond this (kbps, ms) are not believable and are dropped. */
const INT_MAX = 1e12
const OBJECT_TYPES = new Set(['m', 'a', 'v', 'av', 'i', 'c', 'tt', 'k', 'o'])
const HEADER_NAMES = ['cmcd-request', 'cmcd-object', 'cmcd-status', 'cmcd-session'] as const

type Value = string | number | boolean | { token: string }

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39
const isKeyChar = (c: number): boolean =>
  (c >= 0x61 && c <= 0x7a) || isDigit(c) || c === 0x5f || c === 0x2d || c === 0x2e || c === 0x2a
const isSpace = (c: number): boolean => c === 0x20 || c === 0x09

/**
 * One member's value starting at `i` (RFC 8941 §4.2.3.1 bare item: string, integer/decimal,
 * boolean, token), or null when unreadable; `end` is where reading stopped.
 */
function readValue(s: string, i: number): { value: Value | null; end: number } {
  const c = s.charCodeAt(i)
  if (c === 0x22) {
    // RFC 8941 §4.2.5: printable ASCII, `\"` and `\\` the only escapes.
    let out = ''
    for (let j = i + 1; j < s.length; j++) {
      const d = s.charCodeAt(j)
      if (d === 0x22) return { value: out, end: j + 1 }
      if (d === 0x5c) {
        const e = s.charCodeAt(j + 1)
        if (e !== 0x22 && e !== 0x5c) return { value: null, end: j }
        out += s[j + 1]
        j++
      } else if (d < 0x20 || d > 0x7e) {
        return { value: null, end: j }
      } else {
        out += s[j]
      }
    }
    return { value: null, end: s.length }
  }
  if (c === 0x3f) {
    const b = s[i + 1]
    if (b === '0' || b === '1') return { value: b === '1', end: i + 2 }
    return { value: null, end: i + 1 }
  }
  let j = i
  if (c === 0x2d || isDigit(c)) {
    j++
    while (j < s.length && (isDigit(s.charCodeAt(j)) || s[j] === '.')) j++
    const n = Number(s.slice(i, j))
    return { value: Number.isFinite(n) && j - i <= 20 ? n : null, end: j }
  }
  // Tokens (RFC 8941 §3.3.4): a letter or `*`, then tchar, `:` or `/`.
  while (j < s.length && /[A-Za-z0-9:/!#$%&'*+.^_`|~-]/.test(s[j] as string)) j++
  if (j === i || !/[A-Za-z*]/.test(s[i] as string)) return { value: null, end: j }
  return { value: { token: s.slice(i, j) }, end: j }
}

const intOf = (v: Value): number | undefined =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= INT_MAX ? v : undefined
const stringOf = (v: Value, max: number): string | undefined =>
  typeof v === 'string' && v.length <= max ? v : undefined

/** Keep one member if its key is one the tier reads and its value has that key's type and bounds. */
function assign(into: Cmcd, key: string, v: Value): void {
  switch (key) {
    case 'sid':
    case 'cid': {
      const s = stringOf(v, ID_MAX_CHARS)
      if (s !== undefined) into[key] = s
      return
    }
    case 'br':
    case 'bl':
    case 'mtp': {
      const n = intOf(v)
      if (n !== undefined) into[key] = n
      return
    }
    case 'bs':
    case 'su':
      if (typeof v === 'boolean') into[key] = v
      return
    case 'ot':
      if (typeof v === 'object' && OBJECT_TYPES.has(v.token)) into.ot = v.token
      return
    case 'nor': {
      // CTA-5004: nor MUST be URL-encoded; a value that does not decode is dropped.
      const s = stringOf(v, NOR_MAX_CHARS * 3)
      if (s === undefined) return
      try {
        const decoded = decodeURIComponent(s)
        if (decoded.length > 0 && decoded.length <= NOR_MAX_CHARS) into.nor = decoded
      } catch {
        // not percent-encoding: ignored like any other unreadable member
      }
      return
    }
    case 'nrr': {
      const s = stringOf(v, NRR_MAX_CHARS)
      if (s !== undefined && /^\d*-\d*$/.test(s) && s !== '-') into.nrr = s
      return
    }
  }
}

/**
 * Read one CMCD field value (a header's, or the decoded `CMCD=` query value) into `into`: later
 * members override earlier ones (RFC 8941 §4.2.2). Never throws; unreadable members are skipped.
 */
export function parseCmcd(text: string, into: Cmcd = {}): Cmcd {
  if (typeof text !== 'string' || text.length > CMCD_MAX_CHARS) return into
  let i = 0
  let members = 0
  while (i < text.length && members < CMCD_MAX_MEMBERS) {
    while (i < text.length && isSpace(text.charCodeAt(i))) i++
    const keyStart = i
    while (i < text.length && isKeyChar(text.charCodeAt(i))) i++
    const key = text.slice(keyStart, i)
    let value: Value | null = true
    if (text[i] === '=') {
      const read = readValue(text, i + 1)
      value = read.value
      i = read.end
    }
    // Parameters (`;a=b`) are not used by CMCD; skip to the member's end, outside quotes only
    // (readValue consumed any quoted string).
    while (i < text.length && text[i] !== ',') i++
    if (key.length > 0 && key.length <= 32 && value !== null) assign(into, key, value)
    i++
    members++
  }
  return into
}

/** The `CMCD=` parameter of a raw query string, percent-decoded, or undefined. */
function cmcdQueryValue(query: string): string | undefined {
  if (query.length === 0 || query.length > CMCD_MAX_CHARS * 3) return undefined
  const at = query.startsWith('CMCD=') ? 0 : query.indexOf('&CMCD=') + 1
  if (at === 0 && !query.startsWith('CMCD=')) return undefined
  const start = at + 5
  const end = query.indexOf('&', start)
  const raw = query.slice(start, end < 0 ? query.length : end)
  try {
    return decodeURIComponent(raw)
  } catch {
    return undefined
  }
}

/**
 * The CMCD of a request (its four header fields and its `CMCD=` query parameter), or null when it
 * carries none. Call synchronously in the handler (the request's fields are gone after an await).
 */
export function cmcdOf(req: { header(name: string): string | undefined; readonly query: string }): Cmcd | null {
  let out: Cmcd | null = null
  for (const name of HEADER_NAMES) {
    const v = req.header(name)
    if (v !== undefined) out = parseCmcd(v, out ?? {})
  }
  const q = cmcdQueryValue(req.query)
  if (q !== undefined) out = parseCmcd(q, out ?? {})
  return out
}
