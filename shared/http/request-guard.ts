// Request framing checks uWS 20.30 leaves to us (README.md "Requests uWS cannot parse").
//
// uWS frames a request body by the FIRST Content-Length line and parses whatever follows as the
// next request on the connection; a proxy in front that honours another line forwards those bytes
// as body, so a second request is smuggled past it. RFC 9112 §6.3 (5): a Content-Length that is
// not a single decimal number makes the framing invalid, an unrecoverable error for the
// connection. uWS itself closes a connection whose first Content-Length is not a number, but only
// after the handler ran; repeated lines it accepts.
import type uWS from 'uWebSockets.js'

const DIGITS = /^\d+$/

/** Target of forEach while one request is counted (synchronous, so one slot suffices). */
let contentLengthLines = 0
function countContentLength(name: string): void {
  if (name === 'content-length') contentLengthLines++
}

/**
 * True when the request's body framing is ambiguous or invalid: Content-Length repeated (even
 * with equal values: RFC 9112 §6.3 lets a recipient reject them, and one rule is simpler to
 * audit) or not a decimal number. Costs one header lookup for a request without a body; the
 * header walk runs only for requests that declare a length or may carry a body.
 * Limit: a GET/HEAD whose FIRST Content-Length line is empty reads as no Content-Length (uWS
 * answers '' for absent and empty alike) and is not walked: walking every GET would cost more
 * than the rest of a cache hit's header reads; front proxies reject such requests themselves.
 */
export function isFramingInvalid(req: uWS.HttpRequest, mayHaveBody: boolean): boolean {
  const declared = req.getHeader('content-length')
  if (declared === '' && !mayHaveBody) return false
  if (declared !== '' && !DIGITS.test(declared)) return true
  contentLengthLines = 0
  req.forEach(countContentLength)
  return contentLengthLines > 1
}
