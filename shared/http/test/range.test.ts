import t from 'tap'
import { parseRange } from '../range.js'

// request → expectation, RFC 9110 §14.1.2
const table: [string | undefined, number, ReturnType<typeof parseRange>][] = [
  [undefined, 100, { kind: 'none' }],
  ['bytes=0-9', 100, { kind: 'range', start: 0, end: 9 }],
  ['bytes=90-', 100, { kind: 'range', start: 90, end: 99 }],
  ['bytes=90-1000', 100, { kind: 'range', start: 90, end: 99 }],
  ['bytes=-10', 100, { kind: 'range', start: 90, end: 99 }],
  ['bytes=-1000', 100, { kind: 'range', start: 0, end: 99 }],
  ['bytes=100-', 100, { kind: 'unsatisfiable' }],
  ['bytes=600-', 100, { kind: 'unsatisfiable' }],
  ['bytes=-0', 100, { kind: 'unsatisfiable' }],
  ['bytes=9-0', 100, { kind: 'none' }],
  ['bytes=abc', 100, { kind: 'none' }],
  ['bytes=0-1,5-6', 100, { kind: 'none' }],
  ['items=0-1', 100, { kind: 'none' }],
  ['bytes=-', 100, { kind: 'none' }],
  // The range unit is case-insensitive (RFC 9110 §14.1); a range-spec has no inner whitespace.
  ['Bytes=0-9', 100, { kind: 'range', start: 0, end: 9 }],
  ['BYTES=-10', 100, { kind: 'range', start: 90, end: 99 }],
  [' bytes=0-9 ', 100, { kind: 'range', start: 0, end: 9 }],
  ['bytes=0-9,', 100, { kind: 'range', start: 0, end: 9 }],
  ['bytes = 0-9', 100, { kind: 'none' }],
  ['bytes=0 - 9', 100, { kind: 'none' }],
  ['bytes=0-99999999999999999999', 100, { kind: 'range', start: 0, end: 99 }],
  ['bytes=0-9', 0, { kind: 'unsatisfiable' }],
]

void t.test('parses single byte ranges as RFC 9110 §14 says', async (t) => {
  for (const [header, size, want] of table) t.same(parseRange(header, size), want, `${header} of ${size}`)
})
