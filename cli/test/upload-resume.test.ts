// `vcdn upload` across an interruption, and `vcdn videos list|delete`, as real processes against a
// real origin from dist/. The CLI talks to the origin through a loopback proxy that can stall the
// upload part-way (a link that dies mid-file); the CLI is then killed by its pid and run again.
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { makeClip, startTier, tempDir, VCDN_BIN, waitFor } from '../../shared/testing/index.js'

interface Run {
  code: number
  stdout: string
  stderr: string
}

/** Forwards loopback TCP to the origin, counting the bytes clients send; past `stallAfterBytes`
 * it stops reading from the client, so the client's upload hangs as on a dead link. */
class StallingProxy {
  sentBytes = 0
  stallAfterBytes = Number.POSITIVE_INFINITY
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  constructor(upstreamPort: number) {
    this.#server = createServer((client) => {
      const upstream = createConnection({ host: '127.0.0.1', port: upstreamPort })
      this.#sockets.add(client).add(upstream)
      client.on('data', (chunk: Buffer) => {
        const room = this.stallAfterBytes - this.sentBytes
        const part = room >= chunk.length ? chunk : chunk.subarray(0, Math.max(0, room))
        this.sentBytes += part.length
        if (part.length > 0) upstream.write(part)
        if (part.length < chunk.length) client.pause()
      })
      upstream.pipe(client)
      const end = (): void => {
        client.destroy()
        upstream.destroy()
      }
      client.on('close', end).on('error', end)
      upstream.on('close', end).on('error', end)
    })
  }
  async listen(): Promise<string> {
    await new Promise<void>((res) => this.#server.listen(0, '127.0.0.1', res))
    const addr = this.#server.address()
    if (addr === null || typeof addr === 'string') throw new Error('no address')
    return `http://127.0.0.1:${addr.port}`
  }
  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy()
    await new Promise<void>((res) => this.#server.close(() => res()))
  }
}

t.test('vcdn upload resumes an interrupted upload into the same video; videos list and delete', async (t) => {
  const tmp = tempDir('vcdn-upload-resume-')
  t.teardown(tmp.remove)
  const originConfig = {
    tierSecret: 'upload-resume-tier-secret-0123456789abcdef',
    dataDir: join(tmp.dir, 'origin'),
    store: { kind: 'fs', dir: join(tmp.dir, 'store') },
    jwt: { secret: 'upload-resume-jwt-secret-0123456789abcdef', issuer: 'vcdn', audience: 'vcdn-api' },
    accessLog: false,
  }
  const originFile = join(tmp.dir, 'origin.json')
  writeFileSync(originFile, JSON.stringify(originConfig))
  const origin = await startTier('origin', originConfig, { dir: tmp.dir })
  t.teardown(() => origin.stop())
  const proxy = new StallingProxy(origin.port)
  const proxyUrl = await proxy.listen()
  t.teardown(() => proxy.close())
  // The state directory of a fresh user: nothing remembered yet.
  const env = { ...process.env, XDG_STATE_HOME: join(tmp.dir, 'state') }
  const stateFile = join(tmp.dir, 'state', 'vcdn', 'uploads.json')

  const vcdn = (args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(process.execPath, [VCDN_BIN, ...args], { timeout: 60_000, env }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr })
      })
    })
  const minted = await vcdn(['token', '--config', originFile, '--sub', 'alice', '--role', 'uploader'])
  t.equal(minted.code, 0, minted.stderr)
  const token = minted.stdout.trim()
  const api = ['--origin', proxyUrl, '--token', token]
  const video = async (id: string): Promise<{ status: string }> => {
    const res = await fetch(`${origin.url}/v1/videos/${id}`, { headers: { authorization: `Bearer ${token}` } })
    return (await res.json()) as { status: string }
  }

  // A real clip (the origin may probe what it is sent), large enough to cut in the middle.
  const clip = makeClip(join(tmp.dir, 'clip.mp4'), { seconds: 4, width: 640, height: 360, crf: 4 })
  const size = statSync(clip).size
  t.ok(size > 256 * 1024, `clip of ${size} bytes`)

  // First attempt: the link dies after a third of the file; the CLI has printed the video id
  // before any byte went, and is then killed (as a creator's Ctrl-C or a lost laptop lid).
  proxy.stallAfterBytes = Math.floor(size / 3)
  const first = spawn(process.execPath, [VCDN_BIN, 'upload', clip, ...api], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    if (first.exitCode === null && first.signalCode === null) first.kill('SIGKILL')
  })
  let firstOut = ''
  first.stdout.on('data', (b: Buffer) => (firstOut += b.toString()))
  first.stderr.resume()
  const firstExit = new Promise((res) => first.once('exit', res))
  const id = await waitFor(() => /^(\S+)\n/.exec(firstOut)?.[1], { timeoutMs: 30_000, what: 'the video id' })
  await waitFor(() => proxy.sentBytes >= proxy.stallAfterBytes, { timeoutMs: 30_000, what: 'the stall' })
  t.equal(first.exitCode, null, 'the first attempt is still uploading when killed')
  t.ok(existsSync(stateFile), 'the upload is remembered while it runs')
  first.kill('SIGKILL')
  await firstExit

  const rememberedAll = JSON.parse(readFileSync(stateFile, 'utf8')) as Record<string, unknown>
  const remembered = Object.values(
    JSON.parse(readFileSync(stateFile, 'utf8')) as Record<string, { uploadUrl: string; videoId: string }>,
  )
  t.equal(remembered.length, 1)
  t.equal(remembered[0]?.videoId, id)
  // The origin keeps what arrived of the cut PATCH once it sees the connection close.
  const offsetNow = async (): Promise<number> => {
    const head = await fetch(`${origin.url}${new URL(remembered[0]?.uploadUrl ?? '').pathname}`, {
      method: 'HEAD',
      headers: { authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0' },
    })
    return Number(head.headers.get('upload-offset'))
  }
  const offset = await waitFor(offsetNow, { timeoutMs: 30_000, what: 'the cut PATCH settled' })
  t.ok(offset > 0 && offset < size, `the origin kept ${offset} of ${size} bytes`)
  t.equal((await video(id)).status, 'uploading')

  // Second run, link healthy: the same video, and only the rest of the file crosses the link.
  proxy.stallAfterBytes = Number.POSITIVE_INFINITY
  proxy.sentBytes = 0
  const second = await vcdn(['upload', clip, ...api])
  t.equal(second.code, 0, second.stderr)
  t.equal(second.stdout, `${id}\n`, 'the same video id')
  t.match(second.stderr, `resuming video ${id} at byte ${offset}`)
  t.ok(proxy.sentBytes >= size - offset, `sent ${proxy.sentBytes} bytes for the ${size - offset} left`)
  t.ok(proxy.sentBytes < size - offset + 16 * 1024, 'and not the part the origin already had')
  t.same(JSON.parse(readFileSync(stateFile, 'utf8')), {}, 'a finished upload is forgotten')
  await waitFor(async () => (await video(id)).status === 'queued', { timeoutMs: 30_000, what: 'queued' })

  // videos list: a table and --json; delete removes it.
  const table = await vcdn(['videos', 'list', ...api])
  t.equal(table.code, 0, table.stderr)
  t.match(table.stdout, /^ID\s+STATUS\s+PROGRESS\s+CREATED\n/)
  t.match(table.stdout, new RegExp(`^${id}\\s+queued\\s+0%\\s+\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`, 'm'))
  const listed = await vcdn(['videos', 'list', '--json', ...api])
  t.equal(listed.code, 0, listed.stderr)
  t.same(
    (JSON.parse(listed.stdout) as { id: string; status: string }[]).map((v) => [v.id, v.status]),
    [[id, 'queued']],
  )
  const deleted = await vcdn(['videos', 'delete', id, ...api])
  t.equal(deleted.code, 0, deleted.stderr)
  t.match(JSON.parse(deleted.stdout), { id, deleted: true })
  const after = await vcdn(['videos', 'list', '--json', ...api])
  t.same(JSON.parse(after.stdout), [], 'the list no longer shows it')
  const again = await vcdn(['videos', 'delete', id, ...api])
  t.equal(again.code, 2, 'deleting it again fails')
  t.match(again.stderr, /404/)

  // A remembered upload whose video is gone (deleted, expired) is forgotten: a new video, from 0.
  writeFileSync(stateFile, JSON.stringify(rememberedAll))
  const fresh = await vcdn(['upload', clip, ...api])
  t.equal(fresh.code, 0, fresh.stderr)
  const freshId = fresh.stdout.trim()
  t.not(freshId, id, 'a new video')
  t.notMatch(fresh.stderr, /resuming/)
  await waitFor(async () => (await video(freshId)).status === 'queued', { timeoutMs: 30_000, what: 'queued' })
  t.same(JSON.parse(readFileSync(stateFile, 'utf8')), {}, 'and forgotten once done')

  const usage = await vcdn(['videos', 'frobnicate', ...api])
  t.equal(usage.code, 2)
  t.match(usage.stderr, /videos needs list, or delete <id>/)
})
