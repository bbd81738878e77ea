// CPU pinning of the processes under test (bench/README.md "Pinning"). On a 2-core machine:
//   core 0: the edge under test (vcdn's edge process, or nginx's edge master + its one worker)
//   core 1: everything else — the load generator (wrk), this bench process (raw client, scripted
//           origin), the shields and the origin
// so both stacks' edges get one core to themselves, measured identically, and the client never
// competes with the server it measures. `taskset -a -p` sets every thread of a pid we started
// (Node's libuv and V8 threads included). No pinning with fewer than 2 cores or --no-pin.
// The workers scenario, whose edges take one or two cores, lays them out with spreadLayout instead:
// the edge on cores 0..n-1 and its client on every core.
import { execFileSync } from 'node:child_process'
import { availableParallelism } from 'node:os'

interface Pinning {
  edgeCpus: string
  otherCpus: string
}

/** Cores this process may use, read before it pins itself (availableParallelism() follows affinity). */
let machineCores = 0

let pinning: Pinning | null = null

/** Decide the layout once per run (bench/run.ts). */
export function configurePinning(isEnabled: boolean): Pinning | null {
  const cores = availableParallelism()
  machineCores = cores
  if (!isEnabled || cores < 2) {
    pinning = null
    return null
  }
  pinning = { edgeCpus: '0', otherCpus: cores === 2 ? '1' : `1-${cores - 1}` }
  // This process is the raw client and the scripted origin: off the edge's core.
  pinPid(process.pid, pinning.otherCpus)
  return pinning
}

/** CPU list for a load generator we spawn (`taskset -c <list>`), null when not pinning. */
export function loadCpus(): string | null {
  return pinning?.otherCpus ?? null
}

/**
 * The layout of the workers scenario, which needs more than one edge core (null when not pinning):
 * the edge on cores 0..edgeCores-1, the load generator on every core, the same for every
 * configuration compared (bench/README.md "Workers"). Throws when the machine has too few cores.
 */
export function spreadLayout(edgeCores: number): { edgeCpus: string; loadCpus: string } | null {
  if (pinning === null) return null
  if (edgeCores > machineCores)
    throw new Error(`cannot pin an edge to ${edgeCores} cores: this machine has ${machineCores}`)
  return { edgeCpus: cpuRange(edgeCores), loadCpus: cpuRange(machineCores) }
}

function cpuRange(n: number): string {
  return n === 1 ? '0' : `0-${n - 1}`
}

export function pinEdge(pids: readonly number[]): void {
  if (pinning !== null) for (const pid of pids) pinPid(pid, pinning.edgeCpus)
}

/** Every thread of these pids onto a CPU list of spreadLayout (a no-op when not pinning). */
export function pinTo(pids: readonly number[], cpus: string): void {
  if (pinning !== null) for (const pid of pids) pinPid(pid, cpus)
}

export function pinOther(pids: readonly number[]): void {
  if (pinning !== null) for (const pid of pids) pinPid(pid, pinning.otherCpus)
}

function pinPid(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' })
}
