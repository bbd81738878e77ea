// PROXY protocol version 1 (HAProxy's spec §2.1, the text line nginx's `proxy_protocol on` sends)
// in front of a tier's plain-HTTP listener (docs/architecture.md §3). uWebSockets.js 20.30 reads
// only version 2 and cannot adopt a socket Node accepted, so this is a separate node:net listener
// that every byte passes through: per connection it checks the peer, reads the v1 line, connects
// to the tier's own plain listener over loopback and writes a version 2 header with the line's
// source address, then pipes both ways. The cost is measured in bench/README.md ("PROXY v1").
//
// Trust on the uWS side: the front end connects from one loopback address chosen at random at
// start (frontEndAddress()), the only peer whose v2 header the plain listener believes on the
// front end's behalf (HttpServer proxyFrontEnd). No other host can send from 127.0.0.0/8 (Linux
// drops such packets as martians on every interface but lo), so only processes on this machine
// could forge it: the same boundary as a local proxy listed in trustedProxies.
import { randomInt } from 'node:crypto'
import { createServer, connect, isIPv4, type Server, type Socket } from 'node:net'
import { VcdnError } from '../errors/index.js'
import type { TrustedProxies } from './client-address.js'
import { PROXY_V1_MAX_BYTES, PROXY_V2_SIGNATURE, addressBytes, encodeProxyV2, parseProxyV1 } from './proxy-protocol.js'
import type { TlsLog } from './tls.js'

/** How long a trusted peer has to send its v1 line (nginx and HAProxy send it with the connect). */
export const PROXY_V1_HEADER_TIMEOUT_MS = 5000

const PREFIX = Buffer.from('PROXY ', 'latin1')
const CRLF = Buffer.from('\r\n', 'latin1')

/** A loopback address for a front end to connect from: 127.x.y.z, never 127.0.0.0/16 (127.0.0.1's). */
export function frontEndAddress(): string {
  return `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`
}

/** The address a front end connects to for a plain listener on `host`; null when it cannot (IPv6 only). */
export function frontEndTarget(host: string): string | null {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1'
  return isIPv4(host) ? host : null
}

export interface ProxyV1ListenerOptions {
  host: string
  port: number
  /** Peers allowed to send a v1 line; every other peer is closed before a byte is read. */
  proxies: TrustedProxies
  /** The tier's plain-HTTP listener, reachable from `localAddress`. */
  target: { host: string; port: number }
  /** The loopback address to connect from (frontEndAddress()), trusted by the target. */
  localAddress: string
  log: TlsLog
  headerTimeoutMs?: number
}

/** Addresses of a socket as 4 or 16 bytes ('::ffff:a.b.c.d' as IPv4); null when not known. */
function socketBytes(text: string | undefined): Uint8Array | null {
  if (text === undefined) return null
  const plain = text.startsWith('::ffff:') && isIPv4(text.slice(7)) ? text.slice(7) : text
  return addressBytes(plain, isIPv4(plain) ? 'TCP4' : 'TCP6')
}

/**
 * The v2 header for a connection whose v1 line was `line` (without CRLF), or null when the line
 * is not a well-formed one. UNKNOWN: the peer (the proxy itself) is the client, as spec §2.1 asks.
 */
function v2HeaderFor(line: string, client: Socket): Buffer | null {
  const parsed = parseProxyV1(line)
  if (parsed === null) return null
  if (parsed.kind === 'tcp') return encodeProxyV2(parsed)
  const source = socketBytes(client.remoteAddress)
  const destination = socketBytes(client.localAddress)
  if (source === null || destination === null) return null
  return encodeProxyV2({
    source,
    destination,
    sourcePort: client.remotePort ?? 0,
    destinationPort: client.localPort ?? 0,
  })
}

/**
 * The v1 front end (see the file comment). Owns its listener and every connection pair it opened;
 * single-threaded (the main thread, also with `workers` > 1: the kernel spreads its loopback
 * connections over the workers' SO_REUSEPORT listeners).
 */
export class ProxyV1Listener {
  readonly #o: ProxyV1ListenerOptions
  readonly #headerTimeoutMs: number
  readonly #server: Server
  /** Every socket of a connection still open, client side and target side alike. */
  readonly #sockets = new Set<Socket>()

  constructor(opts: ProxyV1ListenerOptions) {
    if (frontEndTarget(opts.target.host) === null) throw new TypeError('opts.target.host must be IPv4')
    if (!opts.localAddress.startsWith('127.')) throw new TypeError('opts.localAddress must be a loopback address')
    this.#o = opts
    this.#headerTimeoutMs = opts.headerTimeoutMs ?? PROXY_V1_HEADER_TIMEOUT_MS
    this.#server = createServer((client) => this.#accept(client))
    this.#server.on('error', (err) => opts.log.error({ err }, 'proxy v1 listener failed'))
  }

  /** Bind host:port (exclusive); resolves with the port. A taken port rejects with ERR_LISTEN_IN_USE. */
  listen(): Promise<number> {
    const { host, port } = this.#o
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        const where = `${host}:${port}`
        reject(
          err.code === 'EADDRINUSE'
            ? new VcdnError('ERR_LISTEN_IN_USE', where, { cause: err })
            : new VcdnError('ERR_LISTEN_FAILED', `${where} (${err.code ?? 'unknown'})`, { cause: err }),
        )
      }
      this.#server.once('error', onError)
      this.#server.listen({ host, port, exclusive: true }, () => {
        this.#server.off('error', onError)
        const address = this.#server.address()
        resolve(typeof address === 'object' && address !== null ? address.port : port)
      })
    })
  }

  /** Stop accepting; open connections go on (the tier drains them through its own listener). */
  stopListening(): void {
    this.#server.close()
  }

  /** Close every connection still open. */
  close(): void {
    this.#server.close()
    for (const socket of this.#sockets) socket.destroy()
    this.#sockets.clear()
  }

  #track(socket: Socket): void {
    this.#sockets.add(socket)
    socket.once('close', () => this.#sockets.delete(socket))
  }

  #accept(client: Socket): void {
    // A client that errs (a reset) must never throw into the event loop: every socket has a handler.
    client.on('error', () => client.destroy())
    const peer = client.remoteAddress
    if (peer === undefined || !this.#o.proxies.isTrusted(peer)) {
      client.destroy()
      return
    }
    this.#track(client)
    let buffered: Buffer = Buffer.alloc(0)
    const refuse = (reason: string): void => {
      clearTimeout(timer)
      client.destroy()
      this.#o.log.warn({ peer, reason }, 'proxy v1: connection closed')
    }
    const timer = setTimeout(() => refuse('no PROXY line in time'), this.#headerTimeoutMs)
    client.once('close', () => clearTimeout(timer))
    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
      const prefixBytes = Math.min(buffered.length, PREFIX.length)
      if (buffered.compare(PREFIX, 0, prefixBytes, 0, prefixBytes) !== 0) return refuse('not a PROXY v1 line')
      const end = buffered.subarray(0, PROXY_V1_MAX_BYTES).indexOf(CRLF)
      if (end === -1) {
        if (buffered.length >= PROXY_V1_MAX_BYTES) refuse('PROXY line over 107 bytes')
        return
      }
      const header = v2HeaderFor(buffered.toString('latin1', 0, end), client)
      if (header === null) return refuse('malformed PROXY v1 line')
      clearTimeout(timer)
      client.off('data', onData)
      client.pause()
      this.#forward(client, header, buffered.subarray(end + CRLF.length))
    }
    client.on('data', onData)
  }

  /**
   * Connect to the tier's listener, write the v2 header and what followed the v1 line, then pipe
   * both ways with backpressure; either side's end, error or close closes both.
   */
  #forward(client: Socket, header: Buffer, rest: Buffer): void {
    const { target, localAddress } = this.#o
    const upstream = connect({ host: frontEndTarget(target.host) ?? '127.0.0.1', port: target.port, localAddress })
    this.#track(upstream)
    upstream.setNoDelay(true)
    client.setNoDelay(true)
    const closeBoth = (): void => {
      client.destroy()
      upstream.destroy()
    }
    upstream.on('error', closeBoth)
    client.on('error', closeBoth)
    upstream.on('close', closeBoth)
    client.on('close', closeBoth)
    // A version 2 header inside the client's bytes would be read by uWS before a later request
    // on this connection (it looks before every request head) and, from the front end's trusted
    // address, believed: a client could choose its address. Any connection carrying the 12-byte
    // signature is closed (a body that holds it by chance is cut: a rare, visible failure).
    const signatureBytes = PROXY_V2_SIGNATURE.length
    let tail: Buffer = Buffer.alloc(0)
    const isSmuggling = (chunk: Buffer): boolean => {
      if (chunk.indexOf(PROXY_V2_SIGNATURE) !== -1) return true
      // The last bytes of the previous chunk and the first of this one: a signature split in two.
      const edge = Buffer.concat([tail, chunk.subarray(0, signatureBytes - 1)])
      if (edge.indexOf(PROXY_V2_SIGNATURE) !== -1) return true
      const last = chunk.length >= signatureBytes - 1 ? chunk : edge
      tail = Buffer.from(last.subarray(Math.max(0, last.length - signatureBytes + 1)))
      return false
    }
    upstream.once('connect', () => {
      if (isSmuggling(rest)) return closeBoth()
      upstream.write(rest.length === 0 ? header : Buffer.concat([header, rest]))
      client.on('data', (chunk: Buffer) => {
        if (isSmuggling(chunk)) return closeBoth()
        if (!upstream.write(chunk)) client.pause()
      })
      upstream.on('drain', () => client.resume())
      client.on('end', () => upstream.end())
      upstream.pipe(client)
      client.resume()
    })
  }
}
