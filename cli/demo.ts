// `vcdn demo`: the whole delivery tier on one machine, on embedded defaults. Starts an origin, a
// shield and an edge as child processes on loopback with a generated config under a data dir,
// publishes a small sample object set, and prints a signed URL. Ctrl-C stops everything.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { FsStore } from '../shared/store/index.js'
import { signedPath } from '../shared/token/index.js'

interface Listening {
  port: number
  adminPort: number
}

const BIN = fileURLToPath(new URL('./vcdn.js', import.meta.url))

function startChild(tier: string, configFile: string, children: ChildProcess[]): Promise<Listening> {
  const child = spawn(process.execPath, [BIN, tier, '--config', configFile], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  return new Promise((res, rej) => {
    let buf = ''
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString()
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        if (!line.includes('"listening"')) continue
        const msg = JSON.parse(line) as { msg: string } & Listening
        if (msg.msg === 'listening') res({ port: msg.port, adminPort: msg.adminPort })
      }
    })
    child.once('exit', (code) => rej(new Error(`${tier} exited with ${code} before listening`)))
  })
}

interface DemoSecrets {
  tierSecret: string
  signingKey: string
}

export async function demo(flags: Record<string, string | true>): Promise<void> {
  const dataDir = resolve(typeof flags['data-dir'] === 'string' ? flags['data-dir'] : '.vcdn-demo')
  mkdirSync(dataDir, { recursive: true })
  const secretsFile = join(dataDir, 'secrets.json')
  const secrets: DemoSecrets = existsSync(secretsFile)
    ? (JSON.parse(readFileSync(secretsFile, 'utf8')) as DemoSecrets)
    : { tierSecret: randomBytes(24).toString('base64url'), signingKey: randomBytes(32).toString('base64url') }
  writeFileSync(secretsFile, JSON.stringify(secrets), { mode: 0o600 })
  const storeDir = join(dataDir, 'store')
  await publishSample(new FsStore({ dir: storeDir }))

  const children: ChildProcess[] = []
  const stop = (): void => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM')
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  try {
    const write = (name: string, config: object): string => {
      const file = join(dataDir, `${name}.json`)
      writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 })
      return file
    }
    const origin = await startChild(
      'origin',
      write('origin', {
        tierSecret: secrets.tierSecret,
        dataDir: join(dataDir, 'origin'),
        store: { kind: 'fs', dir: storeDir },
        signingKeys: { k1: secrets.signingKey },
        activeKey: 'k1',
      }),
      children,
    )
    const originUrl = `http://127.0.0.1:${origin.port}`
    const shield = await startChild(
      'shield',
      write('shield', {
        tierSecret: secrets.tierSecret,
        upstreams: [originUrl],
        cache: { dir: join(dataDir, 'shield') },
      }),
      children,
    )
    const edgePort = typeof flags['port'] === 'string' ? Number(flags['port']) : 8080
    const edge = await startChild(
      'edge',
      write('edge', {
        tierSecret: secrets.tierSecret,
        listen: { host: '127.0.0.1', port: edgePort },
        shields: [`http://127.0.0.1:${shield.port}`],
        origin: originUrl,
        signingKeys: { k1: secrets.signingKey },
        cache: { dir: join(dataDir, 'edge') },
      }),
      children,
    )
    const path = signedPath({
      prefix: '/v/sample/',
      ttlS: 24 * 3600,
      kid: 'k1',
      keys: { k1: secrets.signingKey },
      nowMs: Date.now(),
    })
    process.stdout.write(
      [
        `vcdn demo is running (data in ${dataDir}):`,
        `  origin  ${originUrl}   admin http://127.0.0.1:${origin.adminPort}`,
        `  shield  http://127.0.0.1:${shield.port}   admin http://127.0.0.1:${shield.adminPort}`,
        `  edge    http://127.0.0.1:${edge.port}   admin http://127.0.0.1:${edge.adminPort}`,
        `signed playback URL (24 h): http://127.0.0.1:${edge.port}${path}`,
        `try: curl -i 'http://127.0.0.1:${edge.port}${path}'`,
        'Ctrl-C stops everything.',
        '',
      ].join('\n'),
    )
    await Promise.all(children.map((c) => new Promise((r) => c.once('exit', r))))
  } catch (err) {
    stop()
    throw err
  }
}

/** A tiny playlist set so the tier answers something before the first real upload. */
async function publishSample(store: FsStore): Promise<void> {
  if ((await store.head('v/sample/master.m3u8')) !== null) return
  await store.put(
    'v/sample/720p/index.m3u8',
    Buffer.from('#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-ENDLIST\n'),
  )
  await store.put(
    'v/sample/master.m3u8',
    Buffer.from(
      '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720\n720p/index.m3u8\n',
    ),
  )
}
