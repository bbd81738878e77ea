// Caption files (docs/architecture.md §8): WebVTT (W3C WebVTT §4) or SRT, parsed into cues so the
// origin can refuse a bad file when it is attached and the transcoder can cut the cues onto the
// segment grid. SRT becomes WebVTT. Pure; a parse failure is a CaptionParseError naming the line.

export interface Cue {
  readonly startMs: number
  readonly endMs: number
  /** WebVTT cue settings (`line:0 align:start`), kept as written. */
  readonly settings: string
  /** Payload lines joined with \n; never empty, never containing "-->" or a blank line. */
  readonly text: string
}

export class CaptionParseError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'CaptionParseError'
  }
}

export const MAX_CUES = 50_000
const MAX_MS = 100 * 3600 * 1000

// hh:mm:ss.ttt or mm:ss.ttt (WebVTT §4.3 timestamps); SRT writes a comma before the milliseconds.
const TIME = /^(?:(\d{1,3}):)?([0-5]\d):([0-5]\d)[.,](\d{3})$/
const TIMING = /^(\S+)[ \t]+-->[ \t]+(\S+)(?:[ \t]+(.*))?$/

function timeMs(text: string, line: number): number {
  const m = TIME.exec(text)
  if (!m) throw new CaptionParseError(`line ${line}: "${text.slice(0, 40)}" is not a timestamp`)
  return ((Number(m[1] ?? 0) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000 + Number(m[4])
}

/** WebVTT text escapes: an SRT '&' that is not already an entity becomes &amp; (WebVTT §4.2.2). */
function vttText(lines: readonly string[]): string {
  return lines.map((l) => l.replace(/&(?![A-Za-z]{2,8};|#\d{1,7};|#x[0-9A-Fa-f]{1,6};)/g, '&amp;')).join('\n')
}

/**
 * The cues of a WebVTT or SRT file (decided by the `WEBVTT` signature). Throws CaptionParseError
 * for anything that is not one: no cues, a malformed timing line, an end before its start.
 */
export function parseCaptions(input: string): Cue[] {
  if (typeof input !== 'string') throw new TypeError('input must be a string')
  if (input.includes('\u0000')) throw new CaptionParseError('the file is binary, not text')
  const text = input.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n')
  const lines = text.split('\n')
  const isVtt = /^WEBVTT(?:[ \t].*)?$/.test(lines[0] ?? '')
  const cues: Cue[] = []
  let i = isVtt ? 1 : 0
  if (isVtt) {
    // The header block runs to the first blank line.
    while (i < lines.length && lines[i] !== '') i++
  }
  while (i < lines.length) {
    while (i < lines.length && (lines[i] ?? '').trim() === '') i++
    if (i >= lines.length) break
    const start = i
    const block: string[] = []
    while (i < lines.length && (lines[i] ?? '').trim() !== '') block.push(lines[i++] ?? '')
    if (isVtt && /^(NOTE|STYLE|REGION)(?:[ \t]|$)/.test(block[0] ?? '')) continue
    // A cue identifier (WebVTT) or the SRT counter precedes the timing line.
    let t = 0
    if (!(block[0] ?? '').includes('-->')) {
      if (!isVtt && !/^\d+$/.test((block[0] ?? '').trim()))
        throw new CaptionParseError(`line ${start + 1}: expected a cue number or a timing line`)
      t = 1
    }
    const timing = TIMING.exec((block[t] ?? '').trim())
    if (!timing) throw new CaptionParseError(`line ${start + t + 1}: expected "start --> end"`)
    const startMs = timeMs(timing[1] ?? '', start + t + 1)
    const endMs = timeMs(timing[2] ?? '', start + t + 1)
    if (!(endMs > startMs)) throw new CaptionParseError(`line ${start + t + 1}: the cue ends before it starts`)
    if (endMs > MAX_MS) throw new CaptionParseError(`line ${start + t + 1}: the cue ends after 100 hours`)
    const payload = block.slice(t + 1)
    if (payload.some((l) => l.includes('-->')))
      throw new CaptionParseError(`line ${start + t + 2}: cue text contains "-->"`)
    if (payload.length === 0) continue
    cues.push({ startMs, endMs, settings: isVtt ? (timing[3] ?? '').trim() : '', text: vttText(payload) })
    if (cues.length > MAX_CUES) throw new CaptionParseError(`more than ${MAX_CUES} cues`)
  }
  if (cues.length === 0) throw new CaptionParseError(isVtt ? 'the WebVTT file has no cues' : 'not WebVTT or SRT')
  return cues
}

/** hh:mm:ss.ttt */
export function vttTimestamp(ms: number): string {
  const whole = Math.max(0, Math.round(ms))
  const h = Math.floor(whole / 3_600_000)
  const m = Math.floor((whole % 3_600_000) / 60_000)
  const s = Math.floor((whole % 60_000) / 1000)
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0')
  return `${pad(h)}:${pad(m)}:${pad(s)}.${pad(whole % 1000, 3)}`
}

/** A WebVTT file of `cues`, with extra header lines (e.g. X-TIMESTAMP-MAP) after the signature. */
export function formatWebVtt(cues: readonly Cue[], headerLines: readonly string[] = []): string {
  const out = ['WEBVTT', ...headerLines, '']
  for (const c of cues) {
    out.push(`${vttTimestamp(c.startMs)} --> ${vttTimestamp(c.endMs)}${c.settings ? ` ${c.settings}` : ''}`, c.text, '')
  }
  return out.join('\n')
}
