// The whole tier for end-to-end tests: origin (control API + content), a shield, an edge and N
// transcoders, started from the built `vcdn` command on 127.0.0.1, with minted JWTs.
import { execFile, execFileSync } from 'node:child_process'
import { createReadStream, mkdirSync, statSync, writeFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { join } from 'node:path'
import * as tus from 'tus-js-client'
import { sampleClipArgs, type SampleClip } from '../sample/index.js'
import { freePort, startTier, VCDN_BIN, waitFor, type TierProcess } from './processes.js'

const execFileAsync = promisify(execFile)

export const STACK_SECRET = 'stack-tier-secret-0123456789abcdef'
export const STACK_KEYS = { k1: 'stack-signing-key-0123456789abcdef' }
const JWT = { secret: 'stack-jwt-secret-0123456789abcdef', issuer: 'vcdn', audience: 'vcdn-api' }

export interface VideoView {
  id: string
  status: string
  progress: number
  error: { code: string; message: string } | null
  durationS: number | null
  renditions: { name: string; width: number; height: number; bandwidth: number }[]
  playback: { hls: string; dash: string } | null
}

export interface FullStack {
  dir: string
  origin: TierProcess
  shield: TierProcess
  edge: TierProcess
  transcoders: TierProcess[]
  uploaderToken: string
  workerToken: string
  adminToken: string
  startTranscoder(extra?: Record<string, unknown>): Promise<TierProcess>
  /** Stop the edge and start it again on the same port and cache directory (`extra`: config keys over its own). */
  restartEdge(extra?: Record<string, unknown>): Promise<TierProcess>
  api<T>(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: T }>
  /** Create a video and upload `file` with tus-js-client; returns the video id. */
  upload(file: string): Promise<string>
  /** Poll until the video is ready or failed (deadline). */
  settle(id: string, timeoutMs?: number): Promise<VideoView>
  close(): Promise<void>
}

export async function startFullStack(opts: StackOptions): Promise<FullStack> {
  // A tier that fails to start stops those already running: left running, they kept the test
  // process alive until its file timeout.
  const begun: TierProcess[] = []
  try {
    return await startStack(opts, begun)
  } catch (err) {
    await Promise.all(begun.map((p) => p.stop()))
    throw err
  }
}

interface StackOptions {
  dir: string
  transcoders?: number
  transcoder?: Record<string, unknown>
  origin?: Record<string, unknown>
  /** Register the shield and the edge with POST /v1/nodes as an operator would (default true);
   * false leaves it to the nodes' own registration. */
  registerNodes?: boolean
  /** Edge config keys over the stack's (e.g. prefetch off). */
  edge?: Record<string, unknown>
  /** How long each tier may take to print its listening line (startTier's default otherwise). */
  startTimeoutMs?: number
  /** Shield config keys over the stack's. */
  shield?: Record<string, unknown>
}

async function startStack(opts: StackOptions, begun: TierProcess[]): Promise<FullStack> {
  const { dir } = opts
  mkdirSync(dir, { recursive: true })
  const edgePort = await freePort()
  const originConfig = {
    tierSecret: STACK_SECRET,
    dataDir: join(dir, 'origin'),
    store: { kind: 'fs', dir: join(dir, 'store') },
    signingKeys: STACK_KEYS,
    activeKey: 'k1',
    edgeBaseUrl: `http://127.0.0.1:${edgePort}`,
    jwt: JWT,
    accessLog: false,
    ...opts.origin,
  }
  const tierOpts = { dir, ...(opts.startTimeoutMs !== undefined ? { timeoutMs: opts.startTimeoutMs } : {}) }
  const origin = await startTier('origin', originConfig, tierOpts)
  begun.push(origin)
  // Minted by the real `vcdn token` command, asynchronously: a test process blocked in a synchronous
  // child for seconds keeps undici from retiring idle keep-alive sockets the origin has closed
  // meanwhile, and the next request on one fails with "other side closed".
  const tokenConfigFile = join(dir, 'origin-for-tokens.json')
  writeFileSync(tokenConfigFile, JSON.stringify(originConfig))
  const mint = async (sub: string, role: string): Promise<string> => {
    const args = [VCDN_BIN, 'token', '--config', tokenConfigFile, '--sub', sub, '--role', role, '--ttl', '7200']
    const { stdout } = await execFileAsync(process.execPath, args)
    return stdout.trim()
  }
  const shield = await startTier(
    'shield',
    {
      tierSecret: STACK_SECRET,
      upstreams: [origin.url],
      cache: { dir: join(dir, 'shield') },
      accessLog: false,
      register: { id: 'shield-1' },
      ...opts.shield,
    },
    { dir },
  )
  begun.push(shield)
  const edgeConfig = {
    tierSecret: STACK_SECRET,
    listen: { host: '127.0.0.1', port: edgePort },
    shields: [shield.url],
    origin: origin.url,
    signingKeys: STACK_KEYS,
    cache: { dir: join(dir, 'edge') },
    accessLog: false,
    register: { id: 'edge-1' },
    ...opts.edge,
  }
  let edge = await startTier('edge', edgeConfig, { dir })
  begun.push(edge)
  const manual =
    opts.registerNodes === false
      ? []
      : ([
          ['shield-1', 'shield', shield],
          ['edge-1', 'edge', edge],
        ] as const)
  for (const [id, tier, node] of manual) {
    const r = await fetch(`${origin.url}/v1/nodes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-vcdn-tier': STACK_SECRET },
      body: JSON.stringify({ id, tier, adminUrl: node.adminUrl }),
    })
    if (r.status !== 200) throw new Error(`node registration failed: ${r.status}`)
  }
  const [uploaderToken, workerToken, adminToken] = await Promise.all([
    mint('alice', 'uploader'),
    mint('worker', 'worker'),
    mint('root', 'admin'),
  ])
  const transcoders: TierProcess[] = []
  let n = 0
  const stack: FullStack = {
    dir,
    origin,
    shield,
    edge,
    async restartEdge(extra = {}) {
      await edge.stop()
      edge = await startTier('edge', { ...edgeConfig, ...extra }, { dir })
      stack.edge = edge
      return edge
    },
    transcoders,
    uploaderToken,
    workerToken,
    adminToken,
    async startTranscoder(extra = {}) {
      n++
      const t = await startTier(
        'transcoder',
        {
          origin: origin.url,
          token: workerToken,
          workerId: `worker-${n}`,
          workDir: join(dir, `work-${n}`),
          pollMs: 100,
          ...opts.transcoder,
          ...extra,
        },
        tierOpts,
      )
      begun.push(t)
      transcoders.push(t)
      return t
    },
    async api<T>(method: string, path: string, body?: unknown, token = uploaderToken) {
      const r = await fetch(origin.url + path, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      })
      const text = await r.text()
      return { status: r.status, body: (text === '' ? null : JSON.parse(text)) as T }
    },
    async upload(file) {
      const size = statSync(file).size
      const created = await stack.api<{ id: string; upload: { url: string } }>('POST', '/v1/videos', {
        title: 't',
        size,
      })
      if (created.status !== 201) throw new Error(`create failed: ${created.status}`)
      await new Promise<void>((resolve, reject) => {
        new tus.Upload(createReadStream(file), {
          uploadUrl: origin.url + created.body.upload.url,
          uploadSize: size,
          chunkSize: 4 * 1024 * 1024,
          retryDelays: [0, 200, 500],
          headers: { authorization: `Bearer ${uploaderToken}` },
          onError: reject,
          onSuccess: () => resolve(),
        }).start()
      })
      return created.body.id
    },
    async settle(id, timeoutMs = 120_000) {
      return waitFor(
        async () => {
          const v = await stack.api<VideoView>('GET', `/v1/videos/${id}`)
          return v.body.status === 'ready' || v.body.status === 'failed' ? v.body : null
        },
        { timeoutMs, what: `video ${id} to settle` },
      )
    },
    async close() {
      // workers first, while the origin can still answer their last calls
      await Promise.all(transcoders.map((t) => t.stop()))
      await Promise.all([stack.edge.stop(), shield.stop(), origin.stop()])
    },
  }
  for (let i = 0; i < (opts.transcoders ?? 1); i++) await stack.startTranscoder()
  return stack
}

/** A test clip from ffmpeg's lavfi sources (testsrc2, plus a sine tone unless hasAudio is false). */
export function makeClip(path: string, o: SampleClip): string {
  execFileSync('ffmpeg', sampleClipArgs(o, path))
  return path
}
