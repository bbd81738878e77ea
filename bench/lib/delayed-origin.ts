// Handle on the delayed origin process (lib/delayed-origin-process.ts): spawn, pin to the
// "everything else" core (lib/pin.ts), register objects, read request counts, stop by pid.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { pinOther } from './pin.js'

const START_TIMEOUT_MS = 10_000
const STOP_TIMEOUT_MS = 5_000

export class DelayedOrigin {
  readonly url: string
  readonly pid: number
  readonly #proc: ChildProcess
  readonly #exited: Promise<void>

  private constructor(proc: ChildProcess, pid: number, port: number, exited: Promise<void>) {
    this.#proc = proc
    this.pid = pid
    this.url = `http://127.0.0.1:${port}`
    this.#exited = exited
  }

  static async start(): Promise<DelayedOrigin> {
    const script = fileURLToPath(new URL('./delayed-origin-process.js', import.meta.url))
    const proc = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'inherit'] })
    const exited = new Promise<void>((res) => proc.once('exit', () => res()))
    const pid = proc.pid
    if (pid === undefined) throw new Error('delayed origin: spawn failed')
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = ''
        const timer = setTimeout(() => reject(new Error('delayed origin: no port line in time')), START_TIMEOUT_MS)
        proc.once('exit', (code) => reject(new Error(`delayed origin exited (${String(code)}) before listening`)))
        proc.stdout?.on('data', (b: Buffer) => {
          out += b.toString()
          const nl = out.indexOf('\n')
          if (nl < 0) return
          clearTimeout(timer)
          const port = (JSON.parse(out.slice(0, nl)) as { port?: unknown }).port
          if (typeof port === 'number' && port > 0) resolve(port)
          else reject(new Error(`delayed origin: bad port line ${out.slice(0, nl)}`))
        })
      })
      pinOther([pid])
      return new DelayedOrigin(proc, pid, port, exited)
    } catch (err) {
      proc.kill('SIGKILL')
      throw err
    }
  }

  /** Serve `body` at `path` with `headers`, answering `delayMs` after each request arrives. */
  async object(path: string, body: Buffer, headers: Record<string, string>, delayMs = 0): Promise<void> {
    const q = new URLSearchParams({ path, delayMs: String(delayMs) })
    const res = await fetch(`${this.url}/__bench/object?${q}`, {
      method: 'PUT',
      body: new Uint8Array(body), // a copy typed over a plain ArrayBuffer, as fetch wants (setup only)
      headers: { 'x-bench-headers': JSON.stringify(headers) },
    })
    await res.arrayBuffer()
    if (res.status !== 204) throw new Error(`delayed origin: PUT ${path} → ${res.status}`)
  }

  /** Requests for `path` the origin has seen so far. */
  async count(path: string): Promise<number> {
    const res = await fetch(`${this.url}/__bench/count?${new URLSearchParams({ path })}`)
    const n = Number(await res.text())
    if (!Number.isInteger(n)) throw new Error(`delayed origin: bad count for ${path}`)
    return n
  }

  /** Stop the process we spawned (by its pid): SIGTERM, SIGKILL after 5 s. */
  async close(): Promise<void> {
    if (this.#proc.exitCode !== null || this.#proc.signalCode !== null) return
    this.#proc.stdin?.end()
    this.#proc.kill('SIGTERM')
    const timer = setTimeout(() => this.#proc.kill('SIGKILL'), STOP_TIMEOUT_MS)
    await this.#exited
    clearTimeout(timer)
  }
}
