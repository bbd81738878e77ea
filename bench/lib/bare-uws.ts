// Handle on the bare uWebSockets.js server (lib/bare-uws-process.ts) as a Stack of its own: one
// process, pinned like an edge (lib/pin.ts), paths unsigned, stopped by its pid.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { pinEdge } from './pin.js'
import type { Stack } from './stacks.js'

/** Generating 200 × 2 MB of filler takes seconds; a busy machine can take many more. */
const START_TIMEOUT_MS = 120_000
const STOP_TIMEOUT_MS = 5_000

export async function startBareUws(segments: number): Promise<Stack> {
  const script = fileURLToPath(new URL('./bare-uws-process.js', import.meta.url))
  const proc = spawn(process.execPath, [script, String(segments)], { stdio: ['pipe', 'pipe', 'inherit'] })
  const exited = new Promise<void>((res) => proc.once('exit', () => res()))
  const pid = proc.pid
  if (pid === undefined) throw new Error('bare uWS: spawn failed')
  let port: number
  try {
    port = await new Promise<number>((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => reject(new Error('bare uWS: no port line in time')), START_TIMEOUT_MS)
      proc.once('exit', (code) => reject(new Error(`bare uWS exited (${String(code)}) before listening`)))
      proc.stdout.on('data', (b: Buffer) => {
        out += b.toString()
        const nl = out.indexOf('\n')
        if (nl < 0) return
        clearTimeout(timer)
        const p = (JSON.parse(out.slice(0, nl)) as { port?: unknown }).port
        if (typeof p === 'number' && p > 0) resolve(p)
        else reject(new Error(`bare uWS: bad port line ${out.slice(0, nl)}`))
      })
    })
    pinEdge([pid])
  } catch (err) {
    proc.kill('SIGKILL')
    throw err
  }
  return {
    kind: 'bare',
    edgeUrl: `http://127.0.0.1:${port}`,
    shieldUrl: '',
    edgePids: () => [pid],
    sign: (path) => path,
    edgeStatus: () => null,
    shieldStatus: () => null,
    async close() {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      proc.stdin.end()
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS)
      await exited
      clearTimeout(timer)
    },
  }
}
