// Single byte-range parsing (RFC 9110 §14.1.2). Multiple ranges are answered with the full
// representation, which §14.2 allows ("a server MAY ignore the Range header field").

export type RangeResult =
  | { kind: 'none' } // no Range, a malformed one, or several: send 200 with everything
  | { kind: 'unsatisfiable' } // 416 with Content-Range: bytes */size
  | { kind: 'range'; start: number; end: number } // inclusive

const RANGE_RE = /^bytes=(\d*)-(\d*)$/

export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { kind: 'none' }
  const m = RANGE_RE.exec(header.trim())
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
  // last-pos < first-pos makes the range invalid (§14.1.1): ignored, so 200.
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return { kind: 'none' }
  // §14.1.1: satisfiable only when first-pos is less than the representation's length.
  if (start >= size) return { kind: 'unsatisfiable' }
  if (end >= size) end = size - 1
  return { kind: 'range', start, end }
}

export function contentRange(start: number, end: number, size: number): string {
  return `bytes ${start}-${end}/${size}`
}
