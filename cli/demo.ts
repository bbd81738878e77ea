// `vcdn demo [file]`: the whole tier on one machine, on embedded defaults (docs/architecture.md
// §9). Starts an origin, a shield, an edge and a transcoder on loopback with generated secrets and
// configs under a data dir, ingests a sample (a 20 s clip generated with ffmpeg's lavfi sources, or
// the file given) through the real upload path, waits for `ready`, and prints the signed playback
// URL and a player page. Ctrl-C stops everything.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { sampleClipArgs } from '../shared/sample/index.js'
import { uploadFile, waitReady } from './upload.js'

interface Listening {
  port: number
  adminPort: number
}

interface DemoSecrets {
  tierSecret: string
  signingKey: string
  jwtSecret: string
}

const BIN = fileURLToPath(new URL('./vcdn.js', import.meta.url))
const run = promisify(execFile)

function startChild(tier: string, configFile: string, children: ChildProcess[], logFile: string): Promise<Listening> {
  const child = spawn(process.execPath, [BIN, tier, '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  const log: string[] = []
  return new Promise((res, rej) => {
    let buf = ''
    const onData = (d: Buffer): void => {
      buf += d.toString()
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        log.push(line)
        if (log.length > 200) log.shift()
        if (!line.includes('"listening"')) continue
        const msg = JSON.parse(line) as { msg: string } & Listening
        if (msg.msg === 'listening') res({ port: msg.port, adminPort: msg.adminPort })
      }
      writeFileSync(logFile, `${log.join('\n')}\n`)
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code) => rej(new Error(`${tier} exited with ${code} before listening (log: ${logFile})`)))
  })
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer()
    srv.once('error', rej)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => res(typeof addr === 'object' && addr !== null ? addr.port : 0))
    })
  })
}

/** A 720p clip with a tone, from ffmpeg's lavfi sources. */
async function makeSample(path: string, seconds: number): Promise<void> {
  if (existsSync(path)) return
  await run('ffmpeg', sampleClipArgs({ seconds, width: 1280, height: 720, preset: 'veryfast' }, `${path}.tmp.mp4`))
  renameSync(`${path}.tmp.mp4`, path)
}

export async function demo(flags: Record<string, string | true>, positional: readonly string[] = []): Promise<void> {
  const dataDir = resolve(typeof flags['data-dir'] === 'string' ? flags['data-dir'] : '.vcdn-demo')
  mkdirSync(dataDir, { recursive: true })
  const secretsFile = join(dataDir, 'secrets.json')
  const secrets: DemoSecrets = existsSync(secretsFile)
    ? (JSON.parse(readFileSync(secretsFile, 'utf8')) as DemoSecrets)
    : {
        tierSecret: randomBytes(32).toString('base64url'),
        signingKey: randomBytes(32).toString('base64url'),
        jwtSecret: randomBytes(32).toString('base64url'),
      }
  writeFileSync(secretsFile, JSON.stringify(secrets), { mode: 0o600 })
  const say = (line: string): void => void process.stdout.write(`${line}\n`)

  const children: ChildProcess[] = []
  const stop = (): void => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM')
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  try {
    const write = (name: string, config: object): string => {
      const file = join(dataDir, `${name}.json`)
      writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 })
      return file
    }
    const edgePort = typeof flags['port'] === 'string' ? Number(flags['port']) : 8080
    const edgeListenPort = edgePort === 0 ? await freePort() : edgePort
    const edgeBaseUrl = `http://127.0.0.1:${edgeListenPort}`
    const originFile = write('origin', {
      tierSecret: secrets.tierSecret,
      dataDir: join(dataDir, 'origin'),
      store: { kind: 'fs', dir: join(dataDir, 'store') },
      signingKeys: { k1: secrets.signingKey },
      activeKey: 'k1',
      edgeBaseUrl,
      jwt: { secret: secrets.jwtSecret, issuer: 'vcdn', audience: 'vcdn-api' },
    })
    const origin = await startChild('origin', originFile, children, join(dataDir, 'origin.log'))
    const originUrl = `http://127.0.0.1:${origin.port}`
    const shield = await startChild(
      'shield',
      write('shield', {
        tierSecret: secrets.tierSecret,
        upstreams: [originUrl],
        cache: { dir: join(dataDir, 'shield') },
      }),
      children,
      join(dataDir, 'shield.log'),
    )
    const edge = await startChild(
      'edge',
      write('edge', {
        tierSecret: secrets.tierSecret,
        listen: { host: '127.0.0.1', port: edgeListenPort },
        shields: [`http://127.0.0.1:${shield.port}`],
        origin: originUrl,
        signingKeys: { k1: secrets.signingKey },
        cache: { dir: join(dataDir, 'edge') },
      }),
      children,
      join(dataDir, 'edge.log'),
    )
    // Purge and prewarm fan-out reach the nodes the origin knows.
    for (const [id, tier, adminPort] of [
      ['shield-1', 'shield', shield.adminPort],
      ['edge-1', 'edge', edge.adminPort],
    ] as const) {
      const r = await fetch(`${originUrl}/v1/nodes`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-vcdn-tier': secrets.tierSecret },
        body: JSON.stringify({ id, tier, adminUrl: `http://127.0.0.1:${adminPort}` }),
      })
      if (!r.ok) throw new Error(`registering ${id}: ${r.status} ${await r.text()}`)
    }
    const mint = async (sub: string, role: string, ttlS: number): Promise<string> =>
      (
        await run(process.execPath, [
          BIN,
          'token',
          '--config',
          originFile,
          '--sub',
          sub,
          '--role',
          role,
          '--ttl',
          String(ttlS),
        ])
      ).stdout.trim()
    const workerToken = await mint('transcoder-1', 'worker', 365 * 24 * 3600)
    await startChild(
      'transcoder',
      write('transcoder', { origin: originUrl, token: workerToken, workDir: join(dataDir, 'work') }),
      children,
      join(dataDir, 'transcoder.log'),
    )
    say(`vcdn demo is running (data and logs in ${dataDir}):`)
    say(`  origin      ${originUrl}   admin http://127.0.0.1:${origin.adminPort}`)
    say(`  shield      http://127.0.0.1:${shield.port}   admin http://127.0.0.1:${shield.adminPort}`)
    say(`  edge        ${edgeBaseUrl}   admin http://127.0.0.1:${edge.adminPort}`)

    const uploaderToken = await mint('demo', 'uploader', 24 * 3600)
    const target = { origin: originUrl, token: uploaderToken }
    let sample = positional[0]
    if (sample === undefined) {
      const seconds = typeof flags['seconds'] === 'string' ? Number(flags['seconds']) : 20
      if (!Number.isInteger(seconds) || seconds < 1 || seconds > 600) throw new Error('--seconds must be 1..600')
      sample = join(dataDir, `sample-${seconds}s-720p.mp4`)
      say(`generating a ${seconds} s sample with ffmpeg (lavfi testsrc2 + sine)…`)
      await makeSample(sample, seconds)
    }
    say(`uploading ${sample} (tus)…`)
    const id = await uploadFile(target, sample, { showProgress: true, title: 'vcdn demo sample' })
    say(`video ${id}: transcoding…`)
    const video = await waitReady(target, id, { timeoutMs: 30 * 60_000, showProgress: true })
    if (video.status !== 'ready' || !video.playback?.hls) {
      throw new Error(`video ${id} ended ${video.status}: ${JSON.stringify(video.error)}`)
    }
    const hls = video.playback.hls
    say(`ready: ${video.renditions?.map((r) => r.name).join(', ')} (${video.durationS} s)`)
    say(`signed playback URL (HLS):  ${hls}`)
    if (video.playback.dash) say(`signed playback URL (DASH): ${video.playback.dash}`)
    say(`player page:                ${hls.replace(/master\.m3u8$/, 'player.html')}`)
    say(`uploader token (24 h):      ${uploaderToken}`)
    say('Ctrl-C stops everything.')
    // The listening-style line scripts can wait for.
    say(JSON.stringify({ msg: 'demo ready', videoId: id, hls, player: hls.replace(/master\.m3u8$/, 'player.html') }))
    await Promise.all(children.map((c) => new Promise((r) => c.once('exit', r))))
  } catch (err) {
    stop()
    throw err
  }
}
