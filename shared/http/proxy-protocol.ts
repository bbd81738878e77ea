// PROXY protocol on a plain-HTTP listener (docs/architecture.md §3; HAProxy's "PROXY protocol"
// specification, version 2). What uWebSockets.js 20.30 does, measured with raw sockets:
// - It parses a version 2 header itself, on every connection of App and SSLApp alike, whether or
//   not we want it, and reports its source address (getProxiedRemoteAddress). The header is
//   looked for before every request's head, not only at the start of the connection, so on a
//   keep-alive connection a later header replaces the address for the requests after it.
// - No header, or a header of family UNSPEC (what a proxy's LOCAL health checks send): no
//   proxied address; the LOCAL command with addresses is reported like PROXY. A bad signature or
//   version, a header over 216 bytes of addresses and TLVs, or bytes cut off before the end:
//   the connection is closed without an answer. A version 1 text header ("PROXY TCP4 …\r\n") is
//   not understood: the connection is closed without an answer.
// - On SSLApp the parser runs on the decrypted bytes, so a header sent before the TLS handshake
//   (as every proxy sends it) fails the handshake: PROXY works on the plain listener only.
// So a listener that does not enable PROXY never reads the proxied address (a header a client
// sends is consumed by uWS and ignored, and the request is served as from the socket peer); one
// that does believes it only from a `trustedProxies` peer and closes every other connection.
import type { TrustedProxies } from './client-address.js'

/**
 * An address given as 4 or 16 bytes, as text: IPv4 dotted, IPv4-mapped IPv6 as IPv4 (RFC 4291
 * §2.5.5.2, the form tokens bind), other IPv6 in the RFC 5952 §4 form; '' for any other length.
 */
export function addressText(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`
  if (bytes.length !== 16) return ''
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0))
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`
  }
  // RFC 5952 §4.2: the longest run of two or more zero groups (the first of equals) becomes '::'.
  let bestStart = -1
  let bestLength = 1
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let end = i
    while (end < 8 && groups[end] === 0) end++
    if (end - i > bestLength) {
      bestStart = i
      bestLength = end - i
    }
    i = end
  }
  const hex = groups.map((g) => g.toString(16))
  if (bestStart === -1) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`
}

/** Peers remembered by a PROXY listener: a few balancers in practice; cleared when full. */
const PEER_MEMO_MAX = 256

/**
 * Which peers may speak for a client on a PROXY listener. BlockList.check costs ~14 µs a call
 * (measured, a busy 2-core machine), several hits' worth, and the peers of such a listener are a
 * few balancers, so each peer's answer is remembered. Owned by one server; single-threaded.
 */
export class ProxyPeers {
  readonly #proxies: TrustedProxies
  readonly #memo = new Map<string, boolean>()

  constructor(proxies: TrustedProxies) {
    this.#proxies = proxies
  }

  /**
   * The client of a request whose socket peer is `peer` and whose PROXY header named `proxied`
   * ('' when it named none), or null when the connection must be closed: a peer outside the
   * trusted proxies may not speak for anyone, header or not (HAProxy's accept-proxy refuses what
   * it cannot trust). A trusted peer without an address is its own client: uWS reports a
   * proxy's LOCAL health check (family UNSPEC) exactly as a connection without a header.
   */
  clientOf(peer: string, proxied: string): string | null {
    let isTrusted = this.#memo.get(peer)
    if (isTrusted === undefined) {
      isTrusted = this.#proxies.isTrusted(peer)
      if (this.#memo.size >= PEER_MEMO_MAX) this.#memo.clear()
      this.#memo.set(peer, isTrusted)
    }
    if (!isTrusted) return null
    return proxied === '' ? peer : proxied
  }
}
