// The bench as the tests run it: `node dist/bench/run.js <args>` as a child, its output collected,
// SIGKILLed (the pid we spawned) at killAfterMs or at the test's teardown, whichever comes first,
// so a test still reports what the bench printed before its own timeout.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { ROOT } from '../../shared/testing/index.js'

export interface BenchOutput {
  code: number | null
  stdout: string
  stderr: string
}

export async function runBench(
  t: { teardown(fn: () => void): void },
  args: readonly string[],
  killAfterMs: number,
): Promise<BenchOutput> {
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'bench', 'run.js'), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
  const deadline = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
  t.teardown(() => {
    clearTimeout(deadline)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)))
  clearTimeout(deadline)
  return { code, stdout, stderr }
}
