// Test helpers: start the built tiers as real processes on 127.0.0.1, a scriptable origin stand-in
// for fault tests, raw HTTP for malformed requests, and polling with a deadline (never sleeps).
// Used only by tests and benchmarks.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect, createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseMetrics } from '../metrics/index.js'

/** Repository root, whether this runs from source (tsx) or from dist/. */
export const ROOT = (() => {
  const here = dirname(fileURLToPath(import.meta.url))
  const up = resolve(here, '..', '..')
  return up.endsWith(`${'/'}dist`) ? resolve(up, '..') : up
})()
export const VCDN_BIN = join(ROOT, 'dist', 'cli', 'vcdn.js')

export function tempDir(prefix = 'vcdn-test-'): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

export interface TierProcess {
  readonly tier: string
  readonly port: number
  readonly adminPort: number
  /** The HTTPS listener's port from the listening line; 0 without one. */
  readonly tlsPort: number
  /** The PROXY v1 listener's port from the listening line; 0 without one. */
  readonly proxyV1Port: number
  readonly url: string
  readonly adminUrl: string
  readonly proc: ChildProcess
  readonly output: () => string
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>
  /** SIGKILL and wait for exit. */
  kill9(): Promise<void>
}

const started = new Set<ChildProcess>()
process.on('exit', () => {
  for (const p of started) if (p.exitCode === null) p.kill('SIGKILL')
})

/** Start `vcdn <tier> --config <file>` from dist/ and wait for its `listening` line (deadline). */
export async function startTier(
  tier: string,
  config: Record<string, unknown>,
  opts: {
    dir: string
    timeoutMs?: number
    env?: NodeJS.ProcessEnv
    args?: string[]
    nodeArgs?: string[]
    /** A command that execs its arguments (same pid), e.g. `unshare -m … sh -c '…; exec "$@"'`. */
    wrap?: string[]
  },
): Promise<TierProcess> {
  const file = join(opts.dir, `${tier}-${Date.now()}-${Math.random().toString(36).slice(2)}.json`)
  writeFileSync(file, JSON.stringify(config))
  const argv = [process.execPath, ...(opts.nodeArgs ?? []), VCDN_BIN, tier, '--config', file, ...(opts.args ?? [])]
  const [command, ...rest] = [...(opts.wrap ?? []), ...argv] as [string, ...string[]]
  const proc = spawn(command, rest, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  })
  started.add(proc)
  let out = ''
  let isListening = false
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)))
  const listening = await new Promise<{ port: number; adminPort: number; tlsPort: number; proxyV1Port: number }>(
    (res, rej) => {
      const timer = setTimeout(
        () => rej(new Error(`${tier} did not print listening within ${opts.timeoutMs ?? 15000} ms:\n${out}`)),
        opts.timeoutMs ?? 15000,
      )
      // Stays attached after the listening line: it collects the output for assertions on logs.
      const onData = (buf: Buffer): void => {
        out += buf.toString()
        if (isListening) return
        for (const line of out.split('\n')) {
          if (!line.includes('"listening"')) continue
          try {
            const msg = JSON.parse(line) as {
              msg?: string
              port?: number
              adminPort?: number
              tlsPort?: number
              proxyV1Port?: number
            }
            if (msg.msg === 'listening' && typeof msg.port === 'number' && typeof msg.adminPort === 'number') {
              clearTimeout(timer)
              isListening = true
              res({
                port: msg.port,
                adminPort: msg.adminPort,
                tlsPort: msg.tlsPort ?? 0,
                proxyV1Port: msg.proxyV1Port ?? 0,
              })
              return
            }
          } catch {
            // partial line; wait for more
          }
        }
      }
      proc.stdout?.on('data', onData)
      proc.stderr?.on('data', (b: Buffer) => (out += b.toString()))
      proc.once('exit', (code) => {
        clearTimeout(timer)
        rej(new Error(`${tier} exited with ${code} before listening:\n${out}`))
      })
    },
  )
  return {
    tier,
    ...listening,
    url: `http://127.0.0.1:${listening.port}`,
    adminUrl: `http://127.0.0.1:${listening.adminPort}`,
    proc,
    output: () => out,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
      const code = await exited
      started.delete(proc)
      return code
    },
    async kill9() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
      await exited
      started.delete(proc)
    },
  }
}

/**
 * A port that was free a moment ago. Tiers that a test restarts must listen on an explicit port:
 * uSockets sets SO_REUSEADDR only when the port is not 0, and without it the TIME_WAIT sockets a
 * killed process leaves behind block a restart on the same port for a minute.
 */
export async function freePort(): Promise<number> {
  // The kernel may hand a port it just released to the next bind(0): two servers started side by
  // side in one test (stop 21's CI: Kafka and SeaweedFS) then got the same port. A port is given
  // out once per process; other processes can still take it, so starts that fail to bind retry.
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await ephemeralPort()
    if (givenPorts.has(port)) continue
    givenPorts.add(port)
    return port
  }
  throw new Error('no port this process has not handed out already, in 100 draws')
}

const givenPorts = new Set<number>()

function ephemeralPort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createNetServer()
    srv.once('error', rej)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      srv.close(() => res(port))
    })
  })
}

/** Read one counter/gauge from a tier's /metrics (full name, with labels if any). */
export async function metric(adminUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text()
  return parseMetrics(text).get(name) ?? 0
}

/**
 * A `wrap` for startTier that gives the tier small disks: a tmpfs of `sizeMiB` mounted over each
 * dir in a private mount namespace (root here, or a user namespace), so only that process sees
 * them and they vanish with it. Its view is under `/proc/<pid>/root<dir>`. Throws, saying why,
 * when this machine allows neither.
 */
export function smallDisksWrap(mounts: { dir: string; sizeMiB: number }[]): string[] {
  const quote = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`
  const mountAll = mounts.map((m) => `mount -t tmpfs -o size=${m.sizeMiB}m vcdn-test ${quote(m.dir)}`).join(' && ')
  const tried: string[] = []
  for (const flags of [['-m'], ['-r', '-m']]) {
    const probe = spawnSync('unshare', [...flags, '--', 'sh', '-c', mountAll], { encoding: 'utf8' })
    if (probe.status === 0) return ['unshare', ...flags, '--', 'sh', '-c', `${mountAll} && exec "$@"`, 'sh']
    tried.push(`unshare ${flags.join(' ')}: ${probe.error?.message ?? probe.stderr.trim()}`)
  }
  throw new Error(`could not mount a tmpfs in a private mount namespace:\n${tried.join('\n')}`)
}

/** Poll `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(
  check: () => Promise<T> | T,
  opts: { timeoutMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000)
  let delayMs = 5
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${opts.what ?? 'condition'}`)
    await new Promise((r) => setTimeout(r, delayMs))
    delayMs = Math.min(delayMs * 2, 100)
  }
}

/** Send raw bytes (a request line the URL parser would "fix") and read the whole answer. */
/** With `isSilenceOk`, no answer within timeoutMs resolves with status 0 instead of failing. */
export function rawRequest(
  port: number,
  text: string,
  timeoutMs = 5000,
  isSilenceOk = false,
): Promise<{ status: number; head: string; body: string }> {
  return new Promise((res, rej) => {
    const sock = connect(port, '127.0.0.1')
    let data = ''
    const timer = setTimeout(() => {
      sock.destroy()
      if (isSilenceOk && data === '') res({ status: 0, head: '', body: '' })
      else rej(new Error(`raw request timed out; got: ${data.slice(0, 200)}`))
    }, timeoutMs)
    sock.setEncoding('latin1')
    sock.on('data', (d: string) => {
      data += d
      const end = data.indexOf('\r\n\r\n')
      if (end < 0) return
      const head = data.slice(0, end)
      const len = /content-length:\s*(\d+)/i.exec(head)
      if (len && data.length - end - 4 >= Number(len[1])) {
        clearTimeout(timer)
        sock.destroy()
        res({ status: Number(head.split(' ')[1]), head, body: data.slice(end + 4) })
      }
    })
    sock.on('error', (e) => {
      clearTimeout(timer)
      rej(e)
    })
    sock.on('close', () => {
      if (data === '' && isSilenceOk) return // let the timer decide
      clearTimeout(timer)
      const end = data.indexOf('\r\n\r\n')
      res({
        status: Number(data.split(' ')[1]),
        head: data.slice(0, Math.max(0, end)),
        body: end < 0 ? '' : data.slice(end + 4),
      })
    })
    sock.write(text)
  })
}

export type OriginRoute = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>

/**
 * A scriptable stand-in for an upstream, in the test process, on 127.0.0.1: routes by path, counts
 * requests per path, and lets a test misbehave on purpose (pause mid-body, lie about length, die).
 */
export class ScriptedOrigin {
  readonly counts = new Map<string, number>()
  readonly routes = new Map<string, OriginRoute>()
  #server: Server
  port = 0

  constructor() {
    this.#server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0] as string
      this.counts.set(path, (this.counts.get(path) ?? 0) + 1)
      const route = this.routes.get(path) ?? (path === '/healthz' ? ScriptedOrigin.ok : undefined)
      if (!route) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"nf"}')
        return
      }
      Promise.resolve(route(req, res)).catch(() => res.destroy())
    })
  }

  static ok: OriginRoute = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
  }

  count(path: string): number {
    return this.counts.get(path) ?? 0
  }

  /** Serve `body` at `path` with the given headers (and optional delay before headers). */
  static(path: string, body: Buffer, headers: Record<string, string> = {}, delayMs = 0): this {
    this.routes.set(path, async (req, res) => {
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs))
      const etag = headers['etag']
      if (etag !== undefined && req.headers['if-none-match'] === etag) {
        res.writeHead(304, headers).end()
        return
      }
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(body.length),
        ...headers,
      })
      res.end(req.method === 'HEAD' ? undefined : body)
    })
    return this
  }

  listen(port = 0): Promise<number> {
    return new Promise((res) => {
      this.#server.listen(port, '127.0.0.1', () => {
        const addr = this.#server.address()
        this.port = typeof addr === 'object' && addr !== null ? addr.port : 0
        res(this.port)
      })
    })
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  close(): Promise<void> {
    this.#server.closeAllConnections()
    return new Promise((res) => this.#server.close(() => res()))
  }
}
