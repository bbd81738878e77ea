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
//   not understood: the connection is closed without an answer (v1 has a front end of its own,
//   proxy-v1.ts, which hands uWS a version 2 header).
// - On SSLApp the parser runs on the decrypted bytes, so a header sent before the TLS handshake
//   (as every proxy sends it) fails the handshake: PROXY works on the plain listener only.
// So a listener that does not enable PROXY never reads the proxied address (a header a client
// sends is consumed by uWS and ignored, and the request is served as from the socket peer); one
// that does believes it only from a `trustedProxies` peer and closes every other connection.
import { isIPv4, isIPv6 } from 'node:net'
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

/** The longest version 1 line, CRLF included (HAProxy spec §2.1: 107 bytes for the worst case). */
export const PROXY_V1_MAX_BYTES = 107

/** A version 1 line as parsed: addresses as 4 or 16 bytes, or UNKNOWN (the peer is the client). */
export type ProxyV1 =
  | { kind: 'unknown' }
  | { kind: 'tcp'; source: Uint8Array; destination: Uint8Array; sourcePort: number; destinationPort: number }

/** An IPv4 or IPv6 address (no zone) as 4 or 16 bytes; null when it is not one of `family`. */
export function addressBytes(text: string, family: 'TCP4' | 'TCP6'): Uint8Array | null {
  if (family === 'TCP4') return isIPv4(text) ? Uint8Array.from(text.split('.').map(Number)) : null
  if (!isIPv6(text) || text.includes('%')) return null
  const out = new Uint8Array(16)
  let groups = text
  let words = 8
  if (text.includes('.')) {
    // An IPv4 tail (RFC 4291 §2.2, form 3) is the last 4 bytes; the groups before it fill 12.
    const lastColon = text.lastIndexOf(':')
    out.set(
      text
        .slice(lastColon + 1)
        .split('.')
        .map(Number),
      12,
    )
    groups = text.slice(0, lastColon + 1)
    if (!groups.endsWith('::')) groups = groups.slice(0, -1)
    words = 6
  }
  const [head = '', tail = ''] = groups.split('::')
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)))
  const left = parse(head)
  const right = groups.includes('::') ? parse(tail) : []
  const all = [...left, ...new Array<number>(words - left.length - right.length).fill(0), ...right]
  all.forEach((g, i) => {
    out[i * 2] = g >> 8
    out[i * 2 + 1] = g & 0xff
  })
  return out
}

const PORT = /^(0|[1-9]\d{0,4})$/

/**
 * A version 1 line without its CRLF (HAProxy spec §2.1), parsed strictly: `PROXY TCP4|TCP6 src
 * dst sport dport` with single spaces, addresses of the family named, ports 0..65535 without
 * leading zeros; `PROXY UNKNOWN` and anything after it up to the CRLF (which the spec says to
 * ignore). Null for anything else.
 */
export function parseProxyV1(line: string): ProxyV1 | null {
  if (line === 'PROXY UNKNOWN' || line.startsWith('PROXY UNKNOWN ')) return { kind: 'unknown' }
  const fields = line.split(' ')
  if (fields.length !== 6 || fields[0] !== 'PROXY') return null
  const [, family, sourceText = '', destinationText = '', sourcePortText = '', destinationPortText = ''] = fields
  if (family !== 'TCP4' && family !== 'TCP6') return null
  if (!PORT.test(sourcePortText) || !PORT.test(destinationPortText)) return null
  const sourcePort = Number(sourcePortText)
  const destinationPort = Number(destinationPortText)
  if (sourcePort > 65535 || destinationPort > 65535) return null
  const source = addressBytes(sourceText, family)
  const destination = addressBytes(destinationText, family)
  if (source === null || destination === null) return null
  return { kind: 'tcp', source, destination, sourcePort, destinationPort }
}

/** The version 2 signature (spec §2.2): CR LF CR LF NUL CR LF "QUIT" LF. */
export const PROXY_V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')

/** 4 bytes of IPv4 as IPv4-mapped IPv6 (RFC 4291 §2.5.5.2); 16 bytes as they are. */
function asIPv6(bytes: Uint8Array): Uint8Array {
  if (bytes.length === 16) return bytes
  const out = new Uint8Array(16)
  out[10] = 0xff
  out[11] = 0xff
  out.set(bytes, 12)
  return out
}

/**
 * A version 2 PROXY header (spec §2.2: command PROXY, TCP over IPv4 when both addresses are 4
 * bytes, else over IPv6 with an IPv4 one mapped), no TLVs: what the v1 front end writes to uWS.
 */
export function encodeProxyV2(addresses: {
  source: Uint8Array
  destination: Uint8Array
  sourcePort: number
  destinationPort: number
}): Buffer {
  const isV4 = addresses.source.length === 4 && addresses.destination.length === 4
  const addressLength = isV4 ? 12 : 36
  const out = Buffer.alloc(16 + addressLength)
  PROXY_V2_SIGNATURE.copy(out, 0)
  out[12] = 0x21
  out[13] = isV4 ? 0x11 : 0x21
  out.writeUInt16BE(addressLength, 14)
  const size = isV4 ? 4 : 16
  out.set(isV4 ? addresses.source : asIPv6(addresses.source), 16)
  out.set(isV4 ? addresses.destination : asIPv6(addresses.destination), 16 + size)
  out.writeUInt16BE(addresses.sourcePort, 16 + 2 * size)
  out.writeUInt16BE(addresses.destinationPort, 18 + 2 * size)
  return out
}

/** Peers remembered by a PROXY listener: a few balancers in practice; cleared when full. */
const PEER_MEMO_MAX = 256

/**
 * Which peers may speak for a client on a PROXY listener. BlockList.check costs ~14 µs a call
 * (measured, a busy 2-core machine), several hits' worth, and the peers of such a listener are a
 * few balancers, so each peer's answer is remembered. Owned by one server; single-threaded.
 */
export class ProxyPeers {
  readonly #proxies: TrustedProxies | null
  readonly #frontEnd: string
  readonly #memo = new Map<string, boolean>()

  /**
   * `proxies` null: the listener does not read PROXY itself (`proxyProtocol` off), so only the
   * v1 front end's header is believed and every other peer is its own client. `frontEnd`: the
   * loopback address this process's v1 front end connects from (proxy-v1.ts), '' for none.
   */
  constructor(proxies: TrustedProxies | null, frontEnd = '') {
    this.#proxies = proxies
    this.#frontEnd = frontEnd
  }

  /**
   * The client of a request whose socket peer is `peer` and whose PROXY header named `proxied`
   * ('' when it named none), or null when the connection must be closed: a peer outside the
   * trusted proxies may not speak for anyone, header or not (HAProxy's accept-proxy refuses what
   * it cannot trust). A trusted peer without an address is its own client: uWS reports a
   * proxy's LOCAL health check (family UNSPEC) exactly as a connection without a header.
   */
  clientOf(peer: string, proxied: string): string | null {
    if (peer === this.#frontEnd) return proxied === '' ? peer : proxied
    const proxies = this.#proxies
    if (proxies === null) return peer
    let isTrusted = this.#memo.get(peer)
    if (isTrusted === undefined) {
      isTrusted = proxies.isTrusted(peer)
      if (this.#memo.size >= PEER_MEMO_MAX) this.#memo.clear()
      this.#memo.set(peer, isTrusted)
    }
    if (!isTrusted) return null
    return proxied === '' ? peer : proxied
  }
}
