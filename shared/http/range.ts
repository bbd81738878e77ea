// The one Range parser (RFC 9110 §14), used by the origin's content server and by the caches.
// One byte range is served; several are answered with the full representation, which §14.2
// allows ("a server MAY ignore the Range header field"), keeping multipart out of every tier.

export type RangeResult =
  | { kind: 'none' } // no Range, a malformed one, another unit, or several: send 200 with everything
  | { kind: 'unsatisfiable' } // 416 with Content-Range: bytes */size
  | { kind: 'range'; start: number; end: number } // inclusive

// §14.1.2 int-range / suffix-range: no whitespace inside a range-spec.
const RANGE_SPEC_RE = /^(\d*)-(\d*)$/

export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { kind: 'none' }
  const value = header.trim()
  const eq = value.indexOf('=')
  // §14.1: ranges-specifier = range-unit "=" range-set; range units are case-insensitive.
  if (eq === -1 || value.slice(0, eq).toLowerCase() !== 'bytes') return { kind: 'none' }
  // §5.6.1: a list allows optional whitespace around its commas and empty elements.
  const specs = value
    .slice(eq + 1)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
  if (specs.length !== 1) return { kind: 'none' }
  const m = RANGE_SPEC_RE.exec(specs[0] ?? '')
  if (m === null) return { kind: 'none' }
  const [, a = '', b = ''] = m
  if (a === '' && b === '') return { kind: 'none' }
  if (a === '') {
    // suffix range: the last n bytes (§14.1.3); bytes=-0 is unsatisfiable
    const n = Number(b)
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' }
    return { kind: 'range', start: Math.max(0, size - n), end: size - 1 }
  }
  const start = Number(a)
  let end = b === '' ? Number.MAX_SAFE_INTEGER : Number(b)
  if (!Number.isSafeInteger(end)) end = Number.MAX_SAFE_INTEGER
  // last-pos < first-pos makes the range invalid (§14.1.1): ignored, so 200.
  if (!Number.isSafeInteger(start) || end < start) return { kind: 'none' }
  // §14.1.1: satisfiable only when first-pos is less than the representation's length.
  if (start >= size) return { kind: 'unsatisfiable' }
  if (end >= size) end = size - 1
  return { kind: 'range', start, end }
}

export function contentRange(start: number, end: number, size: number): string {
  return `bytes ${start}-${end}/${size}`
}
