// Spawns ffmpeg/ffprobe with an argv we built ourselves (no shell, no fluent-ffmpeg: it was
// archived upstream in May 2025 and its maintainer recommends spawning ffmpeg directly).
// Owns the child process: it is always reaped before the returned promise settles, so a caller
// that cleans up its files afterwards never races a still-writing ffmpeg.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createReadStream } from 'node:fs'
import type { Writable } from 'node:stream'
import { VcdnError } from '../../shared/errors/index.js'

export const DEFAULT_KILL_GRACE_MS = 2000
const STDERR_TAIL_LINES = 20

/** Why a run failed, kept as `cause` of the coded error (probe turns exit failures into 422s). */
export class FfmpegExitError extends Error {
  readonly exitCode: number | null
  readonly exitSignal: NodeJS.Signals | null
  readonly stderrTail: string

  constructor(bin: string, exitCode: number | null, exitSignal: NodeJS.Signals | null, stderrTail: string) {
    super(`${bin} exited with ${exitCode ?? exitSignal}: ${stderrTail.split('\n').slice(-3).join(' | ')}`)
    this.name = 'FfmpegExitError'
    this.exitCode = exitCode
    this.exitSignal = exitSignal
    this.stderrTail = stderrTail
  }
}

export interface RunFfmpegOptions {
  /** 'ffmpeg' or 'ffprobe' (or an absolute path to either). */
  readonly bin: string
  readonly args: readonly string[]
  readonly signal?: AbortSignal | undefined
  /** Kill the run after this long (0 or undefined: no limit). */
  readonly timeoutMs?: number | undefined
  /** SIGTERM first, SIGKILL after this grace. */
  readonly killGraceMs?: number | undefined
  /** Called for each complete stdout line (ffprobe compact output, -progress blocks). */
  readonly onStdoutLine?: ((line: string) => void) | undefined
  /** Files streamed to stdin one after another (a CMAF init segment followed by its segments). */
  readonly stdinFiles?: readonly string[] | undefined
  readonly cwd?: string | undefined
}

export interface RunFfmpegResult {
  readonly stderrTail: string
}

function validate(opts: RunFfmpegOptions): void {
  if (typeof opts !== 'object' || opts === null) throw new TypeError('options must be an object')
  if (typeof opts.bin !== 'string' || opts.bin === '') throw new TypeError('options.bin must be a non-empty string')
  if (!Array.isArray(opts.args) || !opts.args.every((a) => typeof a === 'string')) {
    throw new TypeError('options.args must be an array of strings')
  }
  if (opts.timeoutMs !== undefined && !(Number.isFinite(opts.timeoutMs) && opts.timeoutMs >= 0)) {
    throw new TypeError('options.timeoutMs must be a number ≥ 0')
  }
  if (opts.killGraceMs !== undefined && !(Number.isFinite(opts.killGraceMs) && opts.killGraceMs >= 0)) {
    throw new TypeError('options.killGraceMs must be a number ≥ 0')
  }
}

/** Run to completion; rejects with ERR_TRANSCODE_FFMPEG | _TIMEOUT | _ABORTED once the child is gone. */
export function runFfmpeg(opts: RunFfmpegOptions): Promise<RunFfmpegResult> {
  validate(opts)
  const { signal } = opts
  if (signal?.aborted) return Promise.reject(new VcdnError('ERR_TRANSCODE_ABORTED', opts.bin, { cause: signal.reason }))

  return new Promise((resolve, reject) => {
    const child = spawn(opts.bin, [...opts.args], {
      stdio: [opts.stdinFiles ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      cwd: opts.cwd,
    })
    const tail: string[] = []
    let stderrPartial = ''
    let stdoutPartial = ''
    let stopReason: VcdnError | undefined
    let spawnError: Error | undefined
    let graceTimer: NodeJS.Timeout | undefined

    const stop = (reason: VcdnError): void => {
      if (stopReason || child.exitCode !== null || child.signalCode !== null) return
      stopReason = reason
      child.kill('SIGTERM')
      graceTimer = setTimeout(() => child.kill('SIGKILL'), opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS)
      graceTimer.unref()
    }
    const onAbort = (): void => stop(new VcdnError('ERR_TRANSCODE_ABORTED', opts.bin, { cause: signal?.reason }))
    signal?.addEventListener('abort', onAbort, { once: true })
    const timeout =
      opts.timeoutMs && opts.timeoutMs > 0
        ? setTimeout(
            () => stop(new VcdnError('ERR_TRANSCODE_TIMEOUT', `${opts.bin} ran longer than ${opts.timeoutMs} ms`)),
            opts.timeoutMs,
          )
        : undefined

    const { stdout, stderr } = child
    assert(stdout && stderr, 'stdout and stderr are pipes')
    stderr.setEncoding('utf8')
    stderr.on('data', (chunk: string) => {
      const lines = (stderrPartial + chunk).split('\n')
      stderrPartial = lines.pop() ?? ''
      for (const line of lines) if (line.trim() !== '') tail.push(line)
      if (tail.length > STDERR_TAIL_LINES) tail.splice(0, tail.length - STDERR_TAIL_LINES)
    })
    stdout.setEncoding('utf8')
    stdout.on('data', (chunk: string) => {
      const lines = (stdoutPartial + chunk).split('\n')
      stdoutPartial = lines.pop() ?? ''
      if (opts.onStdoutLine) for (const line of lines) opts.onStdoutLine(line)
    })
    child.on('error', (err) => {
      spawnError = err
    })
    if (opts.stdinFiles && child.stdin) pipeFiles(opts.stdinFiles, child.stdin)

    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort)
      if (timeout) clearTimeout(timeout)
      if (graceTimer) clearTimeout(graceTimer)
      if (stderrPartial.trim() !== '') tail.push(stderrPartial)
      if (stdoutPartial !== '' && opts.onStdoutLine) opts.onStdoutLine(stdoutPartial)
      const stderrTail = tail.slice(-STDERR_TAIL_LINES).join('\n')
      if (stopReason) return reject(stopReason)
      if (spawnError) {
        return reject(
          new VcdnError('ERR_TRANSCODE_FFMPEG', `cannot run ${opts.bin}: ${spawnError.message}`, { cause: spawnError }),
        )
      }
      if (code !== 0) {
        const cause = new FfmpegExitError(opts.bin, code, sig, stderrTail)
        return reject(new VcdnError('ERR_TRANSCODE_FFMPEG', cause.message, { cause }))
      }
      resolve({ stderrTail })
    })
  })
}

// Sequential copy with backpressure. The reader may exit early (ffprobe after an error, ffmpeg
// killed): EPIPE on stdin is expected then and the exit status tells the real story.
function pipeFiles(files: readonly string[], stdin: Writable): void {
  stdin.on('error', () => {})
  let i = 0
  const next = (): void => {
    const file = files[i++]
    if (file === undefined || stdin.destroyed) {
      stdin.end()
      return
    }
    const stream = createReadStream(file)
    stream.on('error', () => stdin.destroy())
    stream.on('end', next)
    stream.pipe(stdin, { end: false })
    stdin.once('close', () => stream.destroy())
  }
  next()
}

/**
 * Parses `-progress pipe:1` output (key=value lines, a block ends with `progress=continue|end`)
 * into a 0..1 fraction of `durationS`. Monotonic; `progress=end` reports 1.
 */
export function createProgressParser(
  durationS: number,
  onFraction: (fraction: number) => void,
): (line: string) => void {
  let last = 0
  let outTimeUs = 0
  return (line) => {
    const eq = line.indexOf('=')
    if (eq < 0) return
    const key = line.slice(0, eq).trim()
    const value = line.slice(eq + 1).trim()
    if (key === 'out_time_us') {
      const n = Number(value)
      if (Number.isFinite(n) && n > 0) outTimeUs = n
    } else if (key === 'progress') {
      const fraction = value === 'end' ? 1 : durationS > 0 ? Math.min(1, outTimeUs / 1e6 / durationS) : 0
      if (fraction > last || (fraction === 1 && last < 1)) {
        last = fraction
        onFraction(fraction)
      }
    }
  }
}
