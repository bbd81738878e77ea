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
  startTimeoutMs?: number
}

export class NginxTier {
  readonly port: number
  readonly url: string
  readonly #proc: ChildProcess
  readonly #dir: string
  readonly #exited: Promise<void>

  private constructor(proc: ChildProcess, port: number, dir: string, exited: Promise<void>) {
    this.#proc = proc
    this.port = port
    this.url = `http://127.0.0.1:${port}`
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
    const tier = new NginxTier(proc, port, o.dir, exited)
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
