// A real S3 server for tests: SeaweedFS (`weed server -s3`, Apache-2.0), installed by
// scripts/install-seaweedfs.sh into .cache/bin/weed (`make setup`). One process runs master, volume,
// filer and the S3 gateway on 127.0.0.1; the S3 gateway checks SigV4 against one identity, so a
// request signed with other credentials is refused. Never skipped: a missing binary is a failure.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { ROOT, freePort, tempDir } from './processes.js'

export const WEED_BIN = join(ROOT, '.cache', 'bin', 'weed')

export interface S3Server {
  /** `http://127.0.0.1:<port>`, path-style. */
  readonly endpoint: string
  readonly region: string
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly proc: ChildProcess
  readonly output: () => string
  /** SIGTERM (SIGKILL after a deadline), wait for exit, remove the data directory. */
  stop(): Promise<void>
}

// Servers this process started, with what they leave on disk; killed and removed at exit even when
// a test never reached its teardown.
const started = new Map<ChildProcess, () => void>()
process.on('exit', () => {
  for (const [p, cleanup] of started) {
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
    cleanup()
  }
})

/**
 * Starts SeaweedFS on free loopback ports and resolves once its S3 gateway answers a signed-looking
 * request with an S3 error document (i.e. the gateway is up and has loaded the identities). The
 * deadline is sized for a busy 2-core machine: master, volume, filer and gateway start in turn.
 */
export async function startS3Server(opts: { timeoutMs?: number } = {}): Promise<S3Server> {
  if (!existsSync(WEED_BIN)) {
    throw new Error(`${WEED_BIN} is missing: run \`make setup\` (scripts/install-seaweedfs.sh)`)
  }
  const timeoutMs = opts.timeoutMs ?? 90_000
  const deadline = Date.now() + timeoutMs
  // A port that was free a moment ago can be taken by another test before weed binds it; a start
  // that fails that way is retried on new ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(deadline)
    } catch (err) {
      if (attempt >= 3 || Date.now() > deadline || !(err instanceof PortTakenError)) throw err
    }
  }
}

class PortTakenError extends Error {}

async function startOnce(deadline: number): Promise<S3Server> {
  const data = tempDir('vcdn-seaweedfs-')
  const accessKeyId = 'vcdntestaccesskey'
  const secretAccessKey = 'vcdn-test-secret-key-0123456789abcdefghij' // 40 chars, like AWS's
  const configPath = join(data.dir, 's3.json')
  writeFileSync(
    configPath,
    JSON.stringify({
      identities: [
        {
          name: 'vcdn',
          credentials: [{ accessKey: accessKeyId, secretKey: secretAccessKey }],
          actions: ['Admin', 'Read', 'Write', 'List', 'Tagging'],
        },
      ],
    }),
  )
  const ports: number[] = []
  while (ports.length < 8) {
    const p = await freePort()
    if (!ports.includes(p)) ports.push(p)
  }
  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc] = ports as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ]
  const args = [
    'server',
    '-ip=127.0.0.1',
    '-ip.bind=127.0.0.1',
    `-dir=${data.dir}`,
    `-master.port=${master}`,
    `-master.port.grpc=${masterGrpc}`,
    '-master.telemetry=false', // no phone-home from tests
    '-master.volumeSizeLimitMB=64', // small volumes: tests write megabytes, not gigabytes
    '-volume.max=0',
    `-volume.port=${volume}`,
    `-volume.port.grpc=${volumeGrpc}`,
    '-filer',
    `-filer.port=${filer}`,
    `-filer.port.grpc=${filerGrpc}`,
    `-filer.localSocket=${join(data.dir, 'filer.sock')}`,
    '-s3',
    `-s3.port=${s3}`,
    `-s3.port.grpc=${s3Grpc}`,
    '-s3.port.iceberg=0',
    '-s3.port.lance=0',
    `-s3.localSocket=${join(data.dir, 's3.sock')}`,
    `-s3.config=${configPath}`,
    '-s3.autoCreateBucket=false',
  ]
  const proc = spawn(WEED_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: data.dir })
  // weed puts its gRPC unix sockets at fixed /tmp/seaweedfs-<part>-grpc-<grpc port>.sock paths (no
  // flag moves them) and leaves them behind; these names carry our ports, so they are ours.
  const cleanup = (): void => {
    for (const [part, port] of [
      ['master', masterGrpc],
      ['volume', volumeGrpc],
      ['filer', filerGrpc],
      ['s3', s3Grpc],
    ] as const) {
      rmSync(`/tmp/seaweedfs-${part}-grpc-${port}.sock`, { force: true })
    }
    data.remove()
  }
  started.set(proc, cleanup)
  let out = ''
  proc.stdout?.on('data', (b: Buffer) => (out = tail(out + b.toString())))
  proc.stderr?.on('data', (b: Buffer) => (out = tail(out + b.toString())))
  const exited = new Promise<void>((res) => proc.once('exit', () => res()))
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    }
    started.delete(proc)
    cleanup()
  }
  const endpoint = `http://127.0.0.1:${s3}`
  try {
    let delayMs = 50
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        const message = `weed exited with ${proc.exitCode ?? proc.signalCode} before its S3 gateway was ready:\n${out}`
        if (/address already in use/i.test(out)) throw new PortTakenError(message)
        throw new Error(message)
      }
      if (await isReady({ master, volume, filer, s3 })) break
      if (Date.now() > deadline) throw new Error(`weed's S3 gateway was not ready in time:\n${out}`)
      await new Promise((r) => setTimeout(r, delayMs))
      delayMs = Math.min(delayMs * 2, 500)
    }
  } catch (err) {
    await stop()
    throw err
  }
  return {
    endpoint,
    region: 'us-east-1',
    accessKeyId,
    secretAccessKey,
    proc,
    output: () => out,
    stop,
  }
}

/**
 * Ready when every part is: the master has a raft leader (/readyz), the volume server heartbeats
 * to it (/healthz), the filer reads its store (/healthz), and the S3 gateway refuses an anonymous
 * ListBuckets with an S3 error document (it listens and enforces its identities).
 */
async function isReady(ports: { master: number; volume: number; filer: number; s3: number }): Promise<boolean> {
  const checks = await Promise.all([
    probe(ports.master, '/readyz'),
    probe(ports.volume, '/healthz'),
    probe(ports.filer, '/healthz'),
    probe(ports.s3, '/'),
  ])
  const [master, volume, filer, s3] = checks
  return (
    master?.status === 200 &&
    volume?.status === 200 &&
    filer?.status === 200 &&
    s3?.status === 403 &&
    s3.body.includes('<Error>')
  )
}

/** A bucket's settings as the origin's `store.s3` config takes them. */
export interface S3BucketConfig {
  endpoint: string
  region: string
  bucket: string
  accessKeyId: string
  secretAccessKey: string
}

/**
 * Bucket `name` on `server`, created when missing: its `store.s3` config for a stack, and a store
 * to look into it with (the caller closes it). The store module (and the AWS SDK) loads only here.
 */
export async function s3Bucket(
  server: S3Server,
  name: string,
): Promise<{ s3: S3BucketConfig; bucket: import('../store/index.js').S3Store }> {
  const { S3Store } = await import('../store/index.js')
  const s3 = {
    endpoint: server.endpoint,
    region: server.region,
    bucket: name,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
  }
  const bucket = new S3Store({ ...s3, forcePathStyle: true })
  try {
    await bucket.ensureBucket()
  } catch (err) {
    bucket.close()
    throw err
  }
  return { s3, bucket }
}

function probe(port: number, path: string): Promise<{ status: number; body: string } | null> {
  return new Promise((res) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', timeout: 2000 }, (r) => {
      let body = ''
      r.setEncoding('utf8')
      r.on('data', (c: string) => (body += c))
      r.on('end', () => res({ status: r.statusCode ?? 0, body }))
      r.on('error', () => res(null))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => res(null))
    req.end()
  })
}

function tail(text: string): string {
  return text.length > 20_000 ? text.slice(-20_000) : text
}
