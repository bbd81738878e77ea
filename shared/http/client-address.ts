// The client's address behind trusted reverse proxies (docs/architecture.md §3). X-Forwarded-For is
// believed only when the socket peer is one of the operator's proxies (`trustedProxies` CIDRs);
// then the list is walked from the right and the first entry that is not itself a trusted proxy is
// the client (RFC 7239 §5.2 on the order of entries; nginx realip with `real_ip_recursive on`).
// Everything left of that entry was written by parties that are not trusted and is never read, so
// a client that sends its own X-Forwarded-For cannot choose its address.
import { BlockList, isIPv4, isIPv6 } from 'node:net'
import type { ServerRequest } from './types.js'

/** Longest X-Forwarded-For value walked; the rest (left of it) is not read. Bounds the work. */
const FORWARDED_FOR_MAX_CHARS = 4096

interface Cidr {
  address: string
  prefix: number
  family: 'ipv4' | 'ipv6'
}

/** `a.b.c.d/n`, `v6/n`, or a bare address (a single host); null when it is none of those. */
function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/')
  const address = slash === -1 ? text : text.slice(0, slash)
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : null
  if (family === null) return null
  const bits = family === 'ipv4' ? 32 : 128
  if (slash === -1) return { address, prefix: bits, family }
  const prefixText = text.slice(slash + 1)
  if (!/^\d{1,3}$/.test(prefixText)) return null
  const prefix = Number(prefixText)
  return prefix <= bits ? { address, prefix, family } : null
}

/** The problems with a `trustedProxies` list (empty when none). */
export function trustedProxiesProblems(cidrs: readonly string[], at = 'trustedProxies'): string[] {
  const problems: string[] = []
  cidrs.forEach((text, i) => {
    if (parseCidr(text) === null) {
      problems.push(
        `${at}[${i}] must be an IPv4 or IPv6 address or CIDR, e.g. 10.0.0.0/8 (got ${JSON.stringify(text)})`,
      )
    }
  })
  return problems
}

/**
 * An address as text, without a port or brackets (`1.2.3.4:80`, `[2001:db8::1]:80`), IPv4-mapped
 * IPv6 as plain IPv4 (RFC 4291 §2.5.5.2); null when it is not an address.
 */
function parseAddress(text: string): { address: string; family: 'ipv4' | 'ipv6' } | null {
  let address = text
  if (address.startsWith('[')) {
    const close = address.indexOf(']')
    if (close === -1) return null
    address = address.slice(1, close)
  } else if (address.indexOf(':') !== -1 && address.indexOf(':') === address.lastIndexOf(':')) {
    address = address.slice(0, address.indexOf(':')) // IPv4 with a port: one colon
  }
  if (isIPv4(address)) return { address, family: 'ipv4' }
  if (!isIPv6(address)) return null
  if (address.length > 7 && address.slice(0, 7).toLowerCase() === '::ffff:' && isIPv4(address.slice(7))) {
    return { address: address.slice(7), family: 'ipv4' }
  }
  return { address, family: 'ipv6' }
}

/** The operator's reverse proxies, and the client address they report. Immutable once built. */
export class TrustedProxies {
  readonly #list = new BlockList()

  /** Null for an empty list: X-Forwarded-For is then never read. Throws TypeError on a bad entry. */
  static from(cidrs: readonly string[] | undefined): TrustedProxies | null {
    return cidrs === undefined || cidrs.length === 0 ? null : new TrustedProxies(cidrs)
  }

  constructor(cidrs: readonly string[]) {
    for (const [i, text] of cidrs.entries()) {
      const cidr = parseCidr(text)
      if (cidr === null) throw new TypeError(`TrustedProxies: cidrs[${i}] is not an address or CIDR`)
      this.#list.addSubnet(cidr.address, cidr.prefix, cidr.family)
    }
  }

  /** Whether `address` (text, as a socket or X-Forwarded-For reports it) is a trusted proxy. */
  isTrusted(address: string): boolean {
    const parsed = parseAddress(address)
    return parsed !== null && this.#list.check(parsed.address, parsed.family)
  }

  /**
   * The client of a request whose socket peer is `peer` and whose X-Forwarded-For field lines,
   * joined by commas, are `forwardedFor`. An untrusted peer is the client. From a trusted peer,
   * the right-most entry that is not trusted; an entry that is not an address stops the walk and
   * the last trusted hop (the one that handed it on) is the client, as is the left-most entry
   * when every entry is trusted.
   */
  clientAddress(peer: string, forwardedFor: string | undefined): string {
    if (forwardedFor === undefined || !this.isTrusted(peer)) return peer
    let client = peer
    let end = forwardedFor.length
    const stop = Math.max(0, end - FORWARDED_FOR_MAX_CHARS)
    while (end > stop) {
      const comma = forwardedFor.lastIndexOf(',', end - 1)
      const start = Math.max(comma + 1, stop)
      const entry = forwardedFor.slice(start, end).trim()
      end = comma
      if (entry === '') continue
      const parsed = parseAddress(entry)
      if (parsed === null) return client
      client = parsed.address
      if (!this.#list.check(parsed.address, parsed.family)) return client
    }
    return client
  }
}

/**
 * The request's client address: the socket peer, or from a trusted proxy the X-Forwarded-For
 * entry the walk picks. Read it synchronously in the handler (the uWS request is valid only then).
 */
export function clientAddressOf(req: ServerRequest, proxies: TrustedProxies | null): string {
  if (proxies === null) return req.remoteAddress
  // The access line and an IP-bound token both ask, in the same synchronous turn of the handler:
  // one walk per request (a request object is never reused for another request).
  if (req === lastRequest && proxies === lastProxies) return lastClient
  lastClient = proxies.clientAddress(req.remoteAddress, req.headerLines('x-forwarded-for'))
  lastRequest = req
  lastProxies = proxies
  return lastClient
}

let lastRequest: ServerRequest | null = null
let lastProxies: TrustedProxies | null = null
let lastClient = ''
