import { isIPv4, isIPv6 } from 'node:net'

/**
 * Canonical text of a client address so a token bound to `127.0.0.1` matches a socket that
 * reports `::ffff:127.0.0.1` (dual-stack listeners, RFC 4291 §2.5.5.2), and so IPv6 spellings
 * that differ only in case or zero compression compare equal (RFC 5952 §4). Anything that is not
 * an address is returned as is; it will simply never match a real address.
 */
export function normaliseIp(ip: string): string {
  if (ip.length > 7 && ip.charCodeAt(0) === 58 /* ':' */ && ip.slice(0, 7).toLowerCase() === '::ffff:') {
    const tail = ip.slice(7)
    if (isIPv4(tail)) return tail
  }
  if (!isIPv6(ip)) return ip
  let canonical: string
  try {
    // The WHATWG URL parser serialises IPv6 hosts in RFC 5952 form.
    canonical = new URL(`http://[${ip}]/`).hostname.slice(1, -1)
  } catch {
    return ip.toLowerCase()
  }
  // '::ffff:7f00:1' is the same mapped address written in hex.
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical)
  if (mapped !== null) {
    const hi = parseInt(mapped[1] ?? '0', 16)
    const lo = parseInt(mapped[2] ?? '0', 16)
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`
  }
  return canonical
}
