// A real Apache Kafka broker for the tests: one node in KRaft mode (broker and controller in one
// JVM) on 127.0.0.1, its jars fetched from Maven Central by scripts/install-kafka.sh (`make
// kafka`, part of `make setup`) into .cache/kafka/libs. Each call formats a fresh log dir in a
// temp dir, starts the JVM and waits for KafkaRaftServer's "Kafka Server started" line (printed
// once the broker is unfenced and takes produce requests). stop() ends the JVM this module
// started, and only it; restart() starts it again on the same ports and log dir.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort, ROOT, tempDir } from './processes.js'

export const KAFKA_LIBS = join(ROOT, '.cache', 'kafka', 'libs')
const LOG_CONFIG = join(ROOT, 'scripts', 'kafka', 'log4j2.properties')
const READY_LINE = 'Kafka Server started'

export interface KafkaBroker {
  /** host:port of the PLAINTEXT listener, for `metadata.broker.list` / `bootstrap.servers`. */
  readonly bootstrap: string
  readonly port: number
  /** Milliseconds from spawning the JVM to the ready line, for the last start. */
  readonly startMs: number
  /** Everything the JVM printed since the last start. */
  output(): string
  /** SIGTERM (a clean shutdown), SIGKILL past the deadline; resolves when the JVM is gone. */
  stop(): Promise<void>
  /** SIGKILL: a crashed broker. */
  kill9(): Promise<void>
  /** Start again on the same ports and log dir (after stop or kill9). */
  restart(): Promise<void>
  /** stop() and remove the temp dir. */
  close(): Promise<void>
}

export interface KafkaBrokerOptions {
  /** How long the JVM may take to print its ready line (default 120 s: a busy 2-core machine). */
  startTimeoutMs?: number
  /** How long a clean shutdown may take before SIGKILL (default 30 s). */
  stopTimeoutMs?: number
  /** Extra server.properties lines (key → value). */
  properties?: Record<string, string | number>
  /**
   * Called with each attempt's ports just before its JVM starts: a test takes a port here to see a
   * start that cannot bind retried on new ports.
   */
  beforeSpawn?: (ports: { port: number; controllerPort: number; attempt: number }) => Promise<void> | void
}

const running = new Set<ChildProcess>()
process.on('exit', () => {
  for (const p of running) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
})

// Small heap and serial GC: the test broker holds a few topics; the machine has 2 cores shared
// with the rest of the suite. C1 only: a faster start for a JVM that lives a minute.
const JVM_ARGS = ['-Xms64m', '-Xmx512m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Djava.awt.headless=true']

function javaArgs(mainClass: string, args: string[]): string[] {
  return [...JVM_ARGS, `-Dlog4j2.configurationFile=${LOG_CONFIG}`, '-cp', `${KAFKA_LIBS}/*`, mainClass, ...args]
}

export async function startKafkaBroker(opts: KafkaBrokerOptions = {}): Promise<KafkaBroker> {
  if (!existsSync(join(KAFKA_LIBS, '.pom.sha256'))) {
    throw new Error(`Kafka's jars are missing in ${KAFKA_LIBS}: run \`make kafka\` (scripts/install-kafka.sh)`)
  }
  // A port that was free a moment ago can be taken by another process before the JVM binds it
  // (seconds later: the log dir is formatted first); a start that fails that way is retried on new
  // ports and a new log dir.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts, attempt)
    } catch (err) {
      if (attempt >= 3 || !(err instanceof PortTakenError)) throw err
    }
  }
}

class PortTakenError extends Error {}

async function startOnce(opts: KafkaBrokerOptions, attempt: number): Promise<KafkaBroker> {
  const startTimeoutMs = opts.startTimeoutMs ?? 120_000
  const stopTimeoutMs = opts.stopTimeoutMs ?? 30_000
  const tmp = tempDir('vcdn-kafka-')
  const port = await freePort()
  const controllerPort = await freePort()
  const props: Record<string, string | number> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'log.dirs': join(tmp.dir, 'data'),
    'num.partitions': 1,
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 1,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'share.coordinator.state.topic.replication.factor': 1,
    'share.coordinator.state.topic.min.isr': 1,
    // A consumer group's first member starts at once instead of waiting 3 s for others.
    'group.initial.rebalance.delay.ms': 0,
    ...opts.properties,
  }
  const configFile = join(tmp.dir, 'server.properties')
  writeFileSync(
    configFile,
    Object.entries(props)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
  )
  // A KRaft cluster id is 16 random bytes, base64url without padding (22 characters).
  // Never one that starts with '-' (Kafka's Uuid.randomUuid draws again): kafka-storage's argument
  // parser would read it as an option (1 start in 32 failed "expected one argument").
  const drawn = randomBytes(16).toString('base64url')
  const clusterId = drawn.startsWith('-') ? `A${drawn.slice(1)}` : drawn
  const format = spawnSync(
    'java',
    javaArgs('kafka.tools.StorageTool', ['format', '-t', clusterId, '-c', configFile, '--ignore-formatted']),
    { encoding: 'utf8', timeout: startTimeoutMs },
  )
  if (format.status !== 0) {
    tmp.remove()
    throw new Error(
      `kafka-storage format failed (${format.status ?? format.signal}):\n${format.stdout}${format.stderr}`,
    )
  }

  let proc: ChildProcess | null = null
  let exited: Promise<void> = Promise.resolve()
  let out = ''
  let startMs = 0

  const start = async (): Promise<void> => {
    out = ''
    const t0 = performance.now()
    const child = spawn('java', javaArgs('kafka.Kafka', [configFile]), { stdio: ['ignore', 'pipe', 'pipe'] })
    proc = child
    running.add(child)
    exited = new Promise((res) =>
      child.once('exit', () => {
        running.delete(child)
        res()
      }),
    )
    const onData = (b: Buffer): void => void (out += b.toString())
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => {
        cleanupListeners()
        rej(new Error(`the Kafka broker did not start within ${startTimeoutMs} ms:\n${out}`))
      }, startTimeoutMs)
      const onReady = (): void => {
        if (!out.includes(READY_LINE)) return
        cleanupListeners()
        res()
      }
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        cleanupListeners()
        const Failure = out.includes('Address already in use') ? PortTakenError : Error
        rej(new Failure(`the Kafka broker exited (${code ?? signal}) before it was ready:\n${out}`))
      }
      const cleanupListeners = (): void => {
        clearTimeout(timer)
        child.stdout?.off('data', onReady)
        child.removeListener('exit', onExit)
      }
      child.stdout?.on('data', onReady)
      child.once('exit', onExit)
    }).catch(async (err: unknown) => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
      throw err
    })
    startMs = performance.now() - t0
  }

  const stopWith = async (signal: NodeJS.Signals): Promise<void> => {
    const child = proc
    if (child === null || child.exitCode !== null || child.signalCode !== null) return
    child.kill(signal)
    const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs)
    await exited
    clearTimeout(timer)
  }

  try {
    await opts.beforeSpawn?.({ port, controllerPort, attempt })
    await start()
  } catch (err) {
    tmp.remove()
    throw err
  }
  return {
    bootstrap: `127.0.0.1:${port}`,
    port,
    get startMs() {
      return startMs
    },
    output: () => out,
    stop: () => stopWith('SIGTERM'),
    kill9: () => stopWith('SIGKILL'),
    async restart() {
      await stopWith('SIGTERM')
      await start()
    },
    async close() {
      await stopWith('SIGTERM')
      tmp.remove()
    },
  }
}

/**
 * A `bus` config (origin and transcoder) for the Kafka bus on `broker`, with topics and a consumer
 * group of its own (a random prefix starting with `letter`), so tests share one broker without
 * seeing each other's jobs. A silent member leaves the group after 6 s, the broker's minimum, so a
 * killed transcoder's job moves soon.
 */
export function kafkaBusConfig(
  broker: KafkaBroker,
  letter: string,
): { kind: 'kafka'; kafka: { brokers: string; topicPrefix: string; groupId: string; sessionTimeoutMs: number } } {
  const prefix = `${letter}${randomBytes(4).toString('hex')}.`
  return {
    kind: 'kafka',
    kafka: { brokers: broker.bootstrap, topicPrefix: prefix, groupId: `${prefix}transcoders`, sessionTimeoutMs: 6000 },
  }
}
