// HTTPS for a tier's public listener on uWebSockets.js's SSLApp (BoringSSL; TLS 1.2 and 1.3,
// uSockets refuses anything older), with SNI entries and certificates replaced without a restart
// (docs/architecture.md, "HTTPS").
//
// How a reload works, and why (measured on this uWS build, 20.30; shared/http/README.md):
// - uWS cannot swap the certificate of the SSLApp's default context, and swapping an SNI entry
//   (removeServerName + addServerName) deletes the router that connections negotiated under that
//   name still use: their next request reads freed memory. So a reload never touches a live app:
//   it builds a new SSLApp from the new files, binds it to the same port (SO_REUSEPORT), then
//   closes the old app's listen socket. The old app keeps serving the connections it has (a
//   keep-alive player goes on undisturbed); new connections reach the new app only.
// - Closing a listen socket resets the connections still waiting in its accept queue unless the
//   kernel migrates them to another socket of the port (net.ipv4.tcp_migrate_req = 1, Linux 5.14+).
//   Measured here: with 0, 18 of 40 swaps under a sequential client reset a connection; with 1,
//   none of 80. The listener logs a warning when the setting is 0.
// - BoringSSL reads certificates from files only (uWS takes file names). Files are read and checked
//   by Node first (parse, key matches certificate); uWS is then given a private copy of exactly
//   those bytes, deleted as soon as the context is built, so a file rewritten in between is never
//   half-read and a bad file never reaches uWS (an SNI context that fails to build crashes it).
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto'
import { chmodSync, mkdtempSync, readFileSync, rmSync, unwatchFile, watchFile, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import uWS from 'uWebSockets.js'
import { VcdnError } from '../errors/index.js'
import { reservePort, listenError } from './listen.js'

export interface TlsSniEntry {
  /** A host name, or a pattern with `*` for one label (`*.example.com`). */
  serverName: string
  cert: string
  key: string
}

export interface TlsOptions {
  /** PEM certificate chain (leaf first) served to clients whose SNI names no entry, or send none. */
  cert: string
  /** PEM private key of `cert`. */
  key: string
  sni?: readonly TlsSniEntry[]
  /** Where HTTPS listens. Absent: HTTPS replaces plain HTTP on the server's own host and port. */
  listen?: { host: string; port: number }
  /** Poll the files every this many ms and reload when one changes; 0: reload on reloadTls() only. */
  watchIntervalMs?: number
}

/** What the listener reports to the tier's log. */
export interface TlsLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

/** The config keys of a tier that can serve HTTPS (spread into its schema). */
export const tlsSchema = {
  tls: {
    cert: {
      type: 'string',
      default: '',
      doc: 'PEM certificate chain file; with tls.key the public listener speaks HTTPS (TLS 1.2/1.3)',
    },
    key: { type: 'string', default: '', doc: 'PEM private key file of tls.cert' },
    sni: {
      type: 'object[]',
      default: [],
      doc: 'more certificates by SNI name: [{ "serverName": "a.example.com" or "*.example.com", "cert": file, "key": file }]',
    },
    listen: {
      host: { type: 'string', default: '', doc: 'HTTPS listener address ("" = listen.host)' },
      port: {
        type: 'integer',
        min: 0,
        max: 65535,
        doc: 'HTTPS listener port; unset: HTTPS replaces plain HTTP on listen, set: plain HTTP stays on listen beside it',
      },
    },
    watchIntervalMs: {
      type: 'integer',
      default: 5000,
      min: 0,
      unit: 'ms',
      doc: 'how often the certificate files are checked for changes (0 = only on SIGHUP)',
    },
  },
} as const

/** The `tls` section of a loaded config (see tlsSchema). */
export interface TlsConfig {
  cert: string
  key: string
  sni: readonly unknown[]
  listen: { host: string; port?: number | undefined }
  watchIntervalMs: number
}

/** The problems with a `tls` section (empty when none): pairs set together, SNI entries well formed. */
export function tlsProblems(tls: TlsConfig, at = 'tls'): string[] {
  const problems: string[] = []
  if ((tls.cert === '') !== (tls.key === '')) problems.push(`${at}.cert and ${at}.key must be set together`)
  if (tls.cert === '' && tls.sni.length > 0) problems.push(`${at}.sni needs ${at}.cert and ${at}.key (the default)`)
  if (tls.cert === '' && tls.listen.port !== undefined) problems.push(`${at}.listen needs ${at}.cert and ${at}.key`)
  const names = new Set<string>()
  tls.sni.forEach((entry, i) => {
    const where = `${at}.sni[${i}]`
    const e = entry as Partial<Record<string, unknown>>
    for (const field of Object.keys(e)) {
      if (field !== 'serverName' && field !== 'cert' && field !== 'key')
        problems.push(`${where}.${field} is not a known key`)
    }
    for (const field of ['serverName', 'cert', 'key']) {
      if (typeof e[field] !== 'string' || e[field] === '') problems.push(`${where}.${field} must be a non-empty string`)
    }
    const name = e['serverName']
    if (typeof name === 'string' && name !== '') {
      // uSockets matches names label by label, `*` standing for one label, at most 10 labels.
      if (!/^(\*|[A-Za-z0-9-]+)(\.(\*|[A-Za-z0-9-]+))*$/.test(name) || name.split('.').length > 10) {
        problems.push(
          `${where}.serverName must be a host name or a pattern like *.example.com (got ${JSON.stringify(name)})`,
        )
      } else if (names.has(name.toLowerCase())) problems.push(`${where}.serverName ${name} is listed twice`)
      names.add(name.toLowerCase())
    }
  })
  return problems
}

/** The server option for a loaded `tls` section; undefined when HTTPS is off. */
export function tlsOptionsFrom(tls: TlsConfig | undefined, host: string): TlsOptions | undefined {
  if (tls === undefined || tls.cert === '') return undefined
  return {
    cert: tls.cert,
    key: tls.key,
    sni: tls.sni as readonly TlsSniEntry[],
    ...(tls.listen.port !== undefined ? { listen: { host: tls.listen.host || host, port: tls.listen.port } } : {}),
    watchIntervalMs: tls.watchIntervalMs,
  }
}

/** One certificate and its key as read and checked. */
interface LoadedPair {
  readonly certPem: Buffer
  readonly keyPem: Buffer
  readonly subject: string
  readonly validTo: string
}

interface LoadedSet {
  readonly default: LoadedPair
  readonly sni: readonly (LoadedPair & { readonly serverName: string })[]
  /** Digest of every byte: an unchanged set is not reloaded. */
  readonly digest: string
}

function loadPair(certFile: string, keyFile: string, at: string): LoadedPair {
  let certPem: Buffer
  let keyPem: Buffer
  try {
    certPem = readFileSync(certFile)
    keyPem = readFileSync(keyFile)
  } catch (err) {
    throw new VcdnError('ERR_TLS_CERT', `${at}: ${(err as Error).message}`, { cause: err })
  }
  let cert: X509Certificate
  try {
    cert = new X509Certificate(certPem)
  } catch (err) {
    throw new VcdnError('ERR_TLS_CERT', `${at}: ${certFile} is not a PEM certificate`, { cause: err })
  }
  let isPaired: boolean
  try {
    isPaired = cert.checkPrivateKey(createPrivateKey(keyPem))
  } catch (err) {
    throw new VcdnError('ERR_TLS_CERT', `${at}: ${keyFile} is not a PEM private key`, { cause: err })
  }
  if (!isPaired) throw new VcdnError('ERR_TLS_CERT', `${at}: ${keyFile} is not the key of ${certFile}`)
  return { certPem, keyPem, subject: cert.subject.replace(/\n/g, ', '), validTo: cert.validTo }
}

/** Read and check every file of `opts`; throws ERR_TLS_CERT naming the first bad one. */
export function loadTlsFiles(opts: TlsOptions): LoadedSet {
  const def = loadPair(opts.cert, opts.key, 'tls')
  const sni = (opts.sni ?? []).map((e, i) => ({
    ...loadPair(e.cert, e.key, `tls.sni[${i}] (${e.serverName})`),
    serverName: e.serverName,
  }))
  const hash = createHash('sha256')
  for (const p of [def, ...sni]) hash.update(p.certPem).update(p.keyPem)
  for (const p of sni) hash.update(p.serverName)
  return { default: def, sni, digest: hash.digest('hex') }
}

type Route = (res: uWS.HttpResponse, req: uWS.HttpRequest) => void

/**
 * An SSLApp serving `set`, every SNI name routed to `route` as well (uWS gives each server name
 * its own router; an empty one closes the connection). Owned by the caller.
 */
function buildApp(set: LoadedSet, route: Route): uWS.TemplatedApp {
  // A private copy of the checked bytes for BoringSSL, gone once the contexts are built.
  const dir = mkdtempSync(join(tmpdir(), 'vcdn-tls-'))
  chmodSync(dir, 0o700)
  let n = 0
  const files = (pair: LoadedPair): uWS.AppOptions => {
    const cert = join(dir, `${n}.crt`)
    const key = join(dir, `${n++}.key`)
    writeFileSync(cert, pair.certPem, { mode: 0o600 })
    writeFileSync(key, pair.keyPem, { mode: 0o600 })
    return { cert_file_name: cert, key_file_name: key }
  }
  try {
    let app: uWS.TemplatedApp
    try {
      app = uWS.SSLApp(files(set.default))
    } catch (err) {
      throw new VcdnError('ERR_TLS_CERT', 'tls: BoringSSL refused the certificate or key', { cause: err })
    }
    app.any('/*', route)
    for (const entry of set.sni) {
      app.addServerName(entry.serverName, files(entry))
      // uWS 20.30 writes "Browsed to SNI: <name>" to stdout here (std::cout in App.h).
      app.domain(entry.serverName).any('/*', route)
    }
    return app
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** What was loaded, for the log (never key material). */
function describe(set: LoadedSet): object {
  return {
    subject: set.default.subject,
    validTo: set.default.validTo,
    sni: set.sni.map((e) => ({ serverName: e.serverName, subject: e.subject, validTo: e.validTo })),
  }
}

/** Whether the kernel hands a closed listener's queued connections to another (null: unknown). */
function isMigratingRequests(): boolean | null {
  try {
    return readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'latin1').trim() === '1'
  } catch {
    return null
  }
}

/**
 * The HTTPS listener of one HttpServer: its current SSLApp and listen socket, the apps replaced by
 * reloads (still serving their open connections until drain), and the file watch. Owned by the
 * server; single-threaded.
 */
export class TlsListener {
  readonly #opts: TlsOptions
  readonly #route: Route
  readonly #host: string
  #port: number
  readonly #log: TlsLog | null
  #set: LoadedSet
  #app: uWS.TemplatedApp
  #socket: uWS.us_listen_socket | null = null
  #retired: uWS.TemplatedApp[] = []
  #watched: string[] = []
  #reloadTimer: NodeJS.Timeout | null = null
  #isClosed = false
  /** The port is bound by sibling worker threads as well (HttpServer isPortShared): no check that it is free. */
  readonly #isPortShared: boolean
  /** The reload in progress: reloads run one after another (SIGHUP and the watch may coincide). */
  #reloading: Promise<unknown> = Promise.resolve()

  /** Reads and checks the files now: a bad one throws ERR_TLS_CERT before anything listens. */
  constructor(opts: {
    tls: TlsOptions
    host: string
    port: number
    route: Route
    log?: TlsLog | undefined
    isPortShared?: boolean
  }) {
    this.#opts = opts.tls
    this.#isPortShared = opts.isPortShared === true
    this.#route = opts.route
    this.#host = opts.tls.listen?.host ?? opts.host
    this.#port = opts.tls.listen?.port ?? opts.port
    this.#log = opts.log ?? null
    this.#set = loadTlsFiles(opts.tls)
    this.#app = buildApp(this.#set, opts.route)
  }

  /**
   * Bind the port and start watching the files; resolves with the port. The port is checked free
   * first (a port another process holds is ERR_LISTEN_IN_USE, as for the plain listener) and then
   * bound with SO_REUSEPORT, which a reload needs to bind its new app beside the old one (and
   * worker threads to share it: their coordinator checked it).
   */
  async listen(): Promise<number> {
    if (!this.#isPortShared) this.#port = await reservePort(this.#host, this.#port)
    this.#socket = await this.#bind(this.#app)
    if (this.#socket === null) throw await listenError(this.#host, this.#port)
    this.#log?.info({ tls: describe(this.#set), port: this.#port }, 'tls loaded')
    if (isMigratingRequests() === false) {
      this.#log?.warn(
        { sysctl: 'net.ipv4.tcp_migrate_req' },
        'a certificate reload may reset connections waiting to be accepted: set net.ipv4.tcp_migrate_req = 1',
      )
    }
    this.#watch()
    return this.#port
  }

  get port(): number {
    return this.#port
  }

  #bind(app: uWS.TemplatedApp): Promise<uWS.us_listen_socket | null> {
    // listen(host, port, options, cb) exists in this build but is missing from its typings;
    // options 0 leaves SO_REUSEPORT on.
    const listening = app as unknown as {
      listen(host: string, port: number, options: number, cb: (socket: uWS.us_listen_socket | false) => void): void
    }
    return new Promise((resolve) => listening.listen(this.#host, this.#port, 0, (s) => resolve(s === false ? null : s)))
  }

  #watch(): void {
    const intervalMs = this.#opts.watchIntervalMs ?? 0
    if (intervalMs <= 0) return
    const files = new Set([this.#opts.cert, this.#opts.key])
    for (const e of this.#opts.sni ?? []) files.add(e.cert).add(e.key)
    for (const file of files) {
      // stat polling follows symlinks and survives a file replaced by rename (what ACME clients
      // do), which an inotify watch on the old inode would not.
      watchFile(file, { interval: intervalMs, persistent: false }, (cur, prev) => {
        if (cur.mtimeMs === prev.mtimeMs && cur.ino === prev.ino && cur.size === prev.size) return
        // A certificate and its key are rewritten one after the other: reload once both settled.
        if (this.#reloadTimer !== null) clearTimeout(this.#reloadTimer)
        this.#reloadTimer = setTimeout(
          () => {
            this.#reloadTimer = null
            void this.reload('file changed')
          },
          Math.min(intervalMs, 250),
        )
        this.#reloadTimer.unref()
      })
      this.#watched.push(file)
    }
  }

  /**
   * Re-read the files; when they changed, serve new connections from them. A bad file (or a port
   * that cannot be bound again) keeps the current certificates in service and is logged.
   * Resolves true when the new files are in service (or nothing changed).
   */
  reload(reason: string): Promise<boolean> {
    const run = this.#reloading.then(() => this.#reload(reason))
    this.#reloading = run.catch(() => undefined)
    return run
  }

  async #reload(reason: string): Promise<boolean> {
    if (this.#isClosed || this.#socket === null) return false
    let set: LoadedSet
    let app: uWS.TemplatedApp
    try {
      set = loadTlsFiles(this.#opts)
      if (set.digest === this.#set.digest) return true
      app = buildApp(set, this.#route)
    } catch (err) {
      this.#log?.error({ err, code: (err as VcdnError).code, reason }, 'tls reload failed: the old certificates stay')
      return false
    }
    const socket = await this.#bind(app)
    if (socket === null || this.#isClosed || this.#socket === null) {
      if (socket !== null) uWS.us_listen_socket_close(socket)
      closeApp(app)
      if (!this.#isClosed) {
        this.#log?.error({ code: 'ERR_LISTEN_FAILED', reason }, 'tls reload failed: the old certificates stay')
      }
      return false
    }
    // The old app stops accepting; the connections it has go on (see the header comment).
    uWS.us_listen_socket_close(this.#socket)
    this.#retired.push(this.#app)
    this.#socket = socket
    this.#app = app
    this.#set = set
    this.#log?.info({ tls: describe(set), reason }, 'tls reloaded')
    return true
  }

  /** Stop accepting and watching (drain's first step); open connections go on. */
  stopListening(): void {
    this.#isClosed = true
    for (const file of this.#watched) unwatchFile(file)
    this.#watched = []
    if (this.#reloadTimer !== null) clearTimeout(this.#reloadTimer)
    this.#reloadTimer = null
    if (this.#socket !== null) uWS.us_listen_socket_close(this.#socket)
    this.#socket = null
  }

  /** Close every app, current and retired, with their connections (drain's last step). */
  close(): void {
    this.stopListening()
    for (const app of this.#retired) closeApp(app)
    this.#retired = []
    closeApp(this.#app)
  }
}

function closeApp(app: uWS.TemplatedApp): void {
  // close() exists at run time in this uWS build but is missing from its typings.
  ;(app as uWS.TemplatedApp & { close(): void }).close()
}
