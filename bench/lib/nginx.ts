// Runs Debian's nginx as one tier of the reference stack: renders a template from bench/nginx/
// into a temp dir (pid, logs, temp files and cache all live there), starts
// `nginx -p <dir> -c <dir>/<name>.conf` in the foreground (daemon off, so the pid we spawn is the
// master) and stops exactly that pid.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { ROOT } from '../../shared/testing/index.js'
import { childPids, delay, freePort } from './util.js'

export const NGINX_BIN =
  ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p)) ?? 'nginx'

export interface NginxTierOptions {
  /** Template name in bench/nginx/ without `.conf.tmpl` (edge, shield). */
  template: string
  /** Directory of its own (created) for conf, pid, logs, temp files and cache. */
  dir: string
  /** Values for the template's {{NAME}} placeholders besides PREFIX, PORT and USER. */
  vars: Record<string, string>
  /**
   * An HTTPS listener beside the plain one (templates that `include {{PREFIX}}/listen-extra.conf`
   * in their server block: edge): TLS 1.2/1.3 with this certificate and key and a shared session
   * cache. Without it that file is written empty.
   */
  tls?: { cert: string; key: string }
  startTimeoutMs?: number
}

export class NginxTier {
  readonly port: number
  readonly url: string
  /** `https://127.0.0.1:<port>` of the HTTPS listener, null without one. */
  readonly tlsUrl: string | null
  readonly #proc: ChildProcess
  readonly #dir: string
  readonly #exited: Promise<void>

  private constructor(proc: ChildProcess, port: number, tlsPort: number, dir: string, exited: Promise<void>) {
    this.#proc = proc
    this.port = port
    this.url = `http://127.0.0.1:${port}`
    this.tlsUrl = tlsPort > 0 ? `https://127.0.0.1:${tlsPort}` : null
    this.#dir = dir
    this.#exited = exited
  }

  /** The master and its worker (CPU and RSS accounting). */
  get pids(): number[] {
    const pid = this.#proc.pid
    return pid === undefined ? [] : [pid, ...childPids(pid)]
  }

  static async start(o: NginxTierOptions): Promise<NginxTier> {
    mkdirSync(join(o.dir, 'tmp'), { recursive: true })
    const port = await freePort()
    const vars: Record<string, string> = {
      ...o.vars,
      PREFIX: o.dir,
      PORT: String(port),
      // Workers run as whoever runs the benchmark (the directive is ignored when not root).
      USER: userInfo().username,
    }
    const template = readFileSync(join(ROOT, 'bench', 'nginx', `${o.template}.conf.tmpl`), 'utf8')
    const conf = template.replace(/\{\{([A-Z_]+)\}\}/g, (_m, name: string) => {
      const v = vars[name]
      if (v === undefined) throw new Error(`nginx template ${o.template}: no value for {{${name}}}`)
      if (/["\\\n;{}]/.test(v)) throw new Error(`nginx template ${o.template}: unsafe value for {{${name}}}`)
      return v
    })
    const confPath = join(o.dir, `${o.template}.conf`)
    writeFileSync(confPath, conf)
    const tlsPort = o.tls === undefined ? 0 : await freePort()
    writeFileSync(join(o.dir, 'listen-extra.conf'), o.tls === undefined ? '' : tlsListen(tlsPort, o.tls))
    const proc = spawn(NGINX_BIN, ['-p', o.dir, '-c', confPath, '-e', join(o.dir, 'error.log')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    proc.stderr?.on('data', (b: Buffer) => (stderr += b.toString()))
    const exited = new Promise<void>((res) => {
      if (proc.exitCode !== null || proc.signalCode !== null) res()
      else proc.once('exit', () => res())
    })
    const spawnError = new Promise<Error>((res) => proc.once('error', res))
    const tier = new NginxTier(proc, port, tlsPort, o.dir, exited)
    const deadline = Date.now() + (o.startTimeoutMs ?? 10_000)
    try {
      for (let attempt = 0; ; attempt++) {
        const failed = await Promise.race([spawnError, delay(0).then(() => null)])
        if (failed) throw new Error(`cannot run ${NGINX_BIN}: ${failed.message} (make setup installs nginx)`)
        if (proc.exitCode !== null)
          throw new Error(`nginx ${o.template} exited with ${proc.exitCode}: ${stderr}${tier.errorLog()}`)
        if (await canConnect(port)) return tier
        if (Date.now() > deadline || attempt > 500)
          throw new Error(`nginx ${o.template} not listening on ${port}: ${stderr}${tier.errorLog()}`)
        await delay(20)
      }
    } catch (err) {
      await tier.stop()
      throw err
    }
  }

  errorLog(): string {
    try {
      return readFileSync(join(this.#dir, 'error.log'), 'utf8').slice(-2000)
    } catch {
      return ''
    }
  }

  /** SIGQUIT (graceful) to the master we started, SIGKILL if it is still there after the deadline. */
  async stop(timeoutMs = 5000): Promise<void> {
    const proc = this.#proc
    if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return
    const workers = childPids(proc.pid)
    proc.kill('SIGQUIT')
    const timedOut = await Promise.race([this.#exited.then(() => false), delay(timeoutMs).then(() => true)])
    if (timedOut) {
      proc.kill('SIGKILL')
      // A master killed hard leaves its worker behind; those pids are ours too.
      for (const w of workers) {
        try {
          process.kill(w, 'SIGKILL')
        } catch {
          // already gone
        }
      }
      await this.#exited
    }
  }
}

/**
 * The HTTPS listener of listen-extra.conf: what an operator would configure for delivery over
 * TLS 1.2/1.3. Debian's OpenSSL 3 offers TLS_AES_128_GCM_SHA256 among its TLS 1.3 suites; the
 * benchmark's client is limited to it (lib/tls.ts), as it must be for uWS, whose BoringSSL cannot
 * restrict TLS 1.3 suites server-side. No kTLS on these VMs (CONFIG_TLS unset), so nginx's
 * `sendfile` falls back to reading the file and SSL_write.
 */
function tlsListen(port: number, tls: { cert: string; key: string }): string {
  for (const v of [tls.cert, tls.key])
    if (/["\\\n;{}\s]/.test(v)) throw new Error(`nginx tls: unsafe file name ${JSON.stringify(v)}`)
  return [
    `listen 127.0.0.1:${port} ssl;`,
    `ssl_certificate ${tls.cert};`,
    `ssl_certificate_key ${tls.key};`,
    'ssl_protocols TLSv1.2 TLSv1.3;',
    'ssl_session_cache shared:SSL:10m;',
    'ssl_session_timeout 1h;',
    '',
  ].join('\n')
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((res) => {
    const sock = connect(port, '127.0.0.1')
    sock.once('connect', () => {
      sock.destroy()
      res(true)
    })
    sock.once('error', () => res(false))
  })
}
