// PROXY protocol headers as a load balancer sends them (HAProxy's "PROXY protocol" specification:
// version 1 text, version 2 binary), for tests that write them on raw sockets before a request.
import { isIPv4 } from 'node:net'

/** The version 2 signature (spec §2.2): CR LF CR LF NUL CR LF "QUIT" LF. */
export const PROXY_V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')

export interface ProxyV2Options {
  /** The client's address (IPv4 or IPv6); omit for family UNSPEC with no addresses. */
  source?: string
  destination?: string
  sourcePort?: number
  destinationPort?: number
  /** LOCAL (0x20: health checks) or PROXY (0x21, the default). */
  command?: 'local' | 'proxy'
  /** Bytes of TLVs after the addresses: one NOOP TLV (type 0x04, spec §2.2.8) of that size. */
  tlvBytes?: number
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail = ''] = address.split('::')
  const groups = (text: string): number[] => (text === '' ? [] : text.split(':').map((g) => parseInt(g, 16)))
  const left = groups(head)
  const right = address.includes('::') ? groups(tail) : []
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right]
  const out = Buffer.alloc(16)
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2))
  return out
}

function addressBytes(address: string): Buffer {
  return isIPv4(address) ? Buffer.from(address.split('.').map(Number)) : ipv6Bytes(address)
}

/** A version 2 header (TCP over IPv4 or IPv6 by the source's family; UNSPEC without a source). */
export function proxyV2Header(opts: ProxyV2Options = {}): Buffer {
  const command = opts.command === 'local' ? 0x20 : 0x21
  let family = 0x00
  let addresses = Buffer.alloc(0)
  if (opts.source !== undefined) {
    const isV4 = isIPv4(opts.source)
    family = isV4 ? 0x11 : 0x21
    const destination = opts.destination ?? (isV4 ? '127.0.0.1' : '::1')
    const ports = Buffer.alloc(4)
    ports.writeUInt16BE(opts.sourcePort ?? 51234, 0)
    ports.writeUInt16BE(opts.destinationPort ?? 80, 2)
    addresses = Buffer.concat([addressBytes(opts.source), addressBytes(destination), ports])
  }
  const tlvBytes = opts.tlvBytes ?? 0
  let tlvs = Buffer.alloc(0)
  if (tlvBytes > 0) {
    // One NOOP TLV (type 0x04) whose value fills the rest: 3 bytes of type and length.
    tlvs = Buffer.alloc(tlvBytes)
    tlvs[0] = 0x04
    tlvs.writeUInt16BE(tlvBytes - 3, 1)
  }
  const length = Buffer.alloc(2)
  length.writeUInt16BE(addresses.length + tlvs.length)
  return Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([command, family]), length, addresses, tlvs])
}

/** A version 1 header: `PROXY TCP4|TCP6 src dst sport dport\r\n` (spec §2.1). */
export function proxyV1Header(source: string, destination = '127.0.0.1', sourcePort = 51234, port = 80): Buffer {
  const family = isIPv4(source) ? 'TCP4' : 'TCP6'
  return Buffer.from(`PROXY ${family} ${source} ${destination} ${sourcePort} ${port}\r\n`, 'latin1')
}
