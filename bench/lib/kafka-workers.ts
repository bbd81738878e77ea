// Handle on job-bus's Kafka worker group: one process per worker (lib/kafka-worker-process.ts),
// spawned here, pinned with the load generator (lib/pin.ts), stopped by the pids we spawned.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { KafkaWorkerConfig } from './kafka-worker-process.js'
import { pinOther } from './pin.js'

const STOP_TIMEOUT_MS = 30_000

export type JobDoneListener = (worker: number, latencyMs: number) => void

export class KafkaWorkers {
  readonly #procs: ChildProcess[]
  readonly #exited: Promise<void>[]
  #listener: JobDoneListener | null = null

  private constructor(procs: ChildProcess[], exited: Promise<void>[]) {
    this.#procs = procs
    this.#exited = exited
  }

  get size(): number {
    return this.#procs.length
  }

  /** Who hears of each job a worker ran (null: nobody, between runs). */
  setListener(fn: JobDoneListener | null): void {
    this.#listener = fn
  }

  /**
   * Starts the workers one after another, each resolving once it has joined the group (every join
   * rebalances the group; the caller's warm-up lets it settle). Bounded by the config's timeoutMs
   * per worker.
   */
  static async start(n: number, base: Omit<KafkaWorkerConfig, 'workerId'>): Promise<KafkaWorkers> {
    const script = fileURLToPath(new URL('./kafka-worker-process.js', import.meta.url))
    const procs: ChildProcess[] = []
    const exited: Promise<void>[] = []
    const group = new KafkaWorkers(procs, exited)
    try {
      for (let w = 0; w < n; w++) {
        const config: KafkaWorkerConfig = { ...base, workerId: `bench-worker-${w}` }
        const proc = spawn(process.execPath, [script, JSON.stringify(config)], {
          stdio: ['pipe', 'pipe', 'pipe'],
        })
        procs.push(proc)
        exited.push(new Promise<void>((res) => proc.once('exit', () => res())))
        let err = ''
        proc.stderr?.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-4000)))
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`kafka worker ${w}: not in the group within ${base.timeoutMs} ms: ${err}`)),
            base.timeoutMs,
          )
          proc.once('exit', (code) => {
            clearTimeout(timer)
            reject(new Error(`kafka worker ${w} exited (${String(code)}) before joining: ${err}`))
          })
          let out = ''
          let isReady = false
          proc.stdout?.on('data', (b: Buffer) => {
            out += b.toString()
            for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
              const line = out.slice(0, nl)
              out = out.slice(nl + 1)
              if (!isReady && line.includes('"ready":true')) {
                isReady = true
                clearTimeout(timer)
                resolve()
              } else if (line.startsWith('D ')) {
                group.#listener?.(w, Number(line.slice(2)))
              }
            }
          })
        })
        if (proc.pid !== undefined) pinOther([proc.pid])
      }
    } catch (err) {
      await group.close()
      throw err
    }
    return group
  }

  /** Resume claiming (before a run) or pause it (after), in every worker. */
  setActive(isActive: boolean): void {
    for (const p of this.#procs) p.stdin?.write(isActive ? 'resume\n' : 'pause\n')
  }

  pids(): number[] {
    return this.#procs.flatMap((p) => (p.pid === undefined ? [] : [p.pid]))
  }

  /** SIGTERM each worker we spawned (it leaves the group), SIGKILL past the deadline. */
  async close(): Promise<void> {
    await Promise.all(
      this.#procs.map(async (p, i) => {
        if (p.exitCode !== null || p.signalCode !== null) return
        p.kill('SIGTERM')
        const timer = setTimeout(() => p.kill('SIGKILL'), STOP_TIMEOUT_MS)
        await this.#exited[i]
        clearTimeout(timer)
      }),
    )
  }
}
