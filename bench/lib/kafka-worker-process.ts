// One no-op worker of job-bus's Kafka group, run as its own process (spawned by
// lib/kafka-workers.ts) as each transcoder would be: its own KafkaJobBus, i.e. its own member of
// the consumer group, so one member's broker round trips never stall another's event loop.
// argv[2] is a JSON KafkaWorkerConfig. Prints `{"ready":true}` once it has joined the group, then
// claims and completes jobs, doing nothing in between, and prints one line per job:
//   D <enqueue-to-start ms>
// (the job's payload carries `enqueuedAtMs`, epoch ms of the enqueuer's clock: timeOrigin + now(),
// one machine, one clock). Between runs the parent writes `pause` on stdin (the worker stops
// claiming, so its idle claims do not load the machine while the other bus is measured) and
// `resume`. Ends on SIGTERM, when its stdin closes (the parent went away) or after
// maxLifeMs, leaving the group first.
import { connectKafkaJobBus, type KafkaJobBus } from '../../shared/bus/index.js'

export interface KafkaWorkerConfig {
  brokers: string
  topicPrefix: string
  groupId: string
  kind: string
  workerId: string
  leaseMs: number
  idlePollMs: number
  timeoutMs: number
  maxLifeMs: number
}

const config = JSON.parse(process.argv[2] ?? '{}') as KafkaWorkerConfig
const endAt = Date.now() + config.maxLifeMs
let isStopping = false
let isPaused = false
const PAUSED_POLL_MS = 20
let bus: KafkaJobBus | null = null

async function stop(): Promise<void> {
  if (isStopping) return
  isStopping = true
  await bus?.close()
  process.exit(0)
}

async function main(): Promise<void> {
  bus = await connectKafkaJobBus({
    brokers: config.brokers,
    topicPrefix: config.topicPrefix,
    groupId: config.groupId,
    kinds: [config.kind],
    timeoutMs: config.timeoutMs,
  })
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`)
  while (!isStopping && Date.now() < endAt) {
    if (isPaused) {
      await new Promise((r) => setTimeout(r, PAUSED_POLL_MS))
      continue
    }
    const job = await bus.claim(config.workerId, config.leaseMs)
    if (job === null) {
      await new Promise((r) => setTimeout(r, config.idlePollMs))
      continue
    }
    const startedAt = performance.timeOrigin + performance.now()
    const sent = job.payload['enqueuedAtMs']
    await bus.complete(job.id, config.workerId, null)
    process.stdout.write(`D ${typeof sent === 'number' ? (startedAt - sent).toFixed(3) : 'NaN'}\n`)
  }
  await stop()
}

process.on('SIGTERM', () => void stop())
process.stdin.on('end', () => void stop())
process.stdin.on('error', () => void stop())
let input = ''
process.stdin.on('data', (b: Buffer) => {
  input += b.toString()
  for (let nl = input.indexOf('\n'); nl >= 0; nl = input.indexOf('\n')) {
    const command = input.slice(0, nl).trim()
    input = input.slice(nl + 1)
    if (command === 'pause') isPaused = true
    else if (command === 'resume') isPaused = false
  }
})
main().catch((err: unknown) => {
  if (isStopping) return // a claim cut short by close(): stop() exits
  process.stderr.write(
    `kafka worker ${config.workerId}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  )
  process.exit(1)
})
