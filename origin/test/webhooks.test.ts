// Webhooks of a real `vcdn origin` on 127.0.0.1 to node:http receivers on 127.0.0.1: signed
// video.ready / video.failed / video.deleted events, retries with backoff, the deliveries list, and
// a receiver that never answers while the API goes on answering.
import t from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { startTier, tempDir, waitFor } from '../../shared/testing/index.js'
import { mintToken, type Role } from '../src/auth.js'
import { verifyWebhook } from '../src/webhooks.js'

const SECRET = 'webhooks-test-tier-secret-0123456789abcdef'
const JWT = { secret: 'webhooks-test-jwt-secret-0123456789abcdef', issuer: 'vcdn', audience: 'vcdn-api' }
const OK_SECRET = 'receiver-ok-secret-0123456789abcdefgh'
const FLAKY_SECRET = 'receiver-flaky-secret-0123456789abcdef'
const HANG_SECRET = 'receiver-hang-secret-0123456789abcdefg'

interface Received {
  path: string
  signature: string | undefined
  body: string
  event: { id: string; type: string; createdAtMs: number; data: Record<string, unknown> }
}

interface Delivery {
  eventId: string
  type: string
  url: string
  status: string
  attempts: number
  lastStatus: number | null
  lastError: string | null
  nextAttemptAtMs: number | null
}

t.test('origin webhooks', async (t) => {
  const tmp = tempDir()
  t.teardown(tmp.remove)
  const received: Received[] = []
  const flakyTries = new Map<string, number>()
  const hanging = new Set<ServerResponse>()
  let hugeStarted = 0
  // /ok answers 200; /flaky answers 500 to the first two tries of each event; /hang never answers.
  const receiver = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString('utf8')))
    req.on('end', () => {
      const path = req.url ?? ''
      if (path === '/reset') {
        req.socket.destroy()
        return
      }
      if (path === '/huge') {
        // An answer far larger than anyone should read: up to 256 MiB, written as fast as it drains.
        res.writeHead(200, { 'content-type': 'application/octet-stream' })
        const chunk = Buffer.alloc(64 * 1024, 1)
        let left = 4096
        const pump = (): void => {
          while (left > 0 && !res.destroyed) {
            left--
            if (!res.write(chunk)) return void res.once('drain', pump)
          }
          res.end()
        }
        hugeStarted++
        pump()
        return
      }
      if (path === '/hang') {
        hanging.add(res)
        res.on('close', () => hanging.delete(res))
        return
      }
      const event = JSON.parse(body) as Received['event']
      if (path === '/flaky') {
        const tries = (flakyTries.get(event.id) ?? 0) + 1
        flakyTries.set(event.id, tries)
        if (tries < 3) {
          res.writeHead(500).end('not yet')
          return
        }
      }
      received.push({ path, signature: req.headers['vcdn-signature'] as string | undefined, body, event })
      res.writeHead(200).end('ok')
    })
  })
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy()
        receiver.close(() => resolve())
      }),
  )
  const recvUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`

  const dataDir = join(tmp.dir, 'data')
  const origin = await startTier(
    'origin',
    {
      tierSecret: SECRET,
      dataDir,
      store: { kind: 'fs', dir: join(tmp.dir, 'store') },
      jwt: JWT,
      upload: { isProbed: false },
      accessLog: false,
      webhooks: [
        { url: `${recvUrl}/ok`, secret: OK_SECRET },
        { url: `${recvUrl}/flaky`, secret: FLAKY_SECRET },
        { url: `${recvUrl}/hang`, secret: HANG_SECRET },
        { url: `${recvUrl}/reset`, secret: HANG_SECRET },
        { url: `${recvUrl}/huge`, secret: HANG_SECRET },
      ],
      webhookDelivery: { maxAttempts: 3, backoffBaseMs: 50, backoffMaxMs: 200, timeoutMs: 1500, pollEveryMs: 20 },
    },
    { dir: tmp.dir },
  )
  t.teardown(() => origin.stop())

  const bearer = (sub: string, role: Role): string => `Bearer ${mintToken({ sub, role, ttlS: 600 }, JWT)}`
  const api = (path: string, init: { method?: string; body?: object; as: [string, Role] }): Promise<Response> =>
    fetch(`${origin.url}${path}`, {
      method: init.method ?? 'GET',
      headers: { 'content-type': 'application/json', authorization: bearer(...init.as) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    })
  const worker = (path: string, body: object): Promise<Response> =>
    api(path, { method: 'POST', body: { workerId: 'w1', ...body }, as: ['fleet', 'worker'] })
  const deliveries = async (): Promise<Delivery[]> => {
    const r = await api('/v1/webhooks/deliveries?limit=100', { as: ['root', 'admin'] })
    if (r.status !== 200) throw new Error(`deliveries ${r.status}`)
    return ((await r.json()) as { deliveries: Delivery[] }).deliveries
  }

  /** A video of alice's whose 10-byte source arrived in one tus PATCH, and its claimed job. */
  const claimedVideo = async (): Promise<{ videoId: string; jobId: string }> => {
    const created = await api('/v1/videos', { method: 'POST', body: { size: 10 }, as: ['alice', 'uploader'] })
    const video = (await created.json()) as { id: string; upload: { url: string } }
    const patch = await fetch(`${origin.url}${video.upload.url}`, {
      method: 'PATCH',
      headers: {
        authorization: bearer('alice', 'uploader'),
        'tus-resumable': '1.0.0',
        'content-type': 'application/offset+octet-stream',
        'upload-offset': '0',
      },
      body: new Uint8Array(10).fill(7),
    })
    if (patch.status !== 204) throw new Error(`tus PATCH ${patch.status}`)
    const job = await waitFor(
      async () => {
        const r = await worker('/v1/jobs/claim', { leaseMs: 30_000 })
        return ((await r.json()) as { job: { id: string; videoId: string } | null }).job
      },
      { what: 'the transcode job', timeoutMs: 30_000 },
    )
    t.equal(job.videoId, video.id)
    return { videoId: video.id, jobId: job.id }
  }
  const eventOf = (path: string, type: string, videoId: string): Received | undefined =>
    received.find((r) => r.path === path && r.event.type === type && r.event.data['id'] === videoId)

  let readyVideoId = ''

  t.test('a receiver gets a signed video.ready event with the video', async (t) => {
    const { videoId, jobId } = await claimedVideo()
    readyVideoId = videoId
    const result = {
      durationS: 4,
      renditions: [
        { name: '360p', width: 640, height: 360, bandwidth: 900_000, codecs: 'avc1.64001e,mp4a.40.2', frameRate: 30 },
      ],
    }
    t.equal((await worker(`/v1/jobs/${jobId}/complete`, { result })).status, 200)
    const got = await waitFor(() => eventOf('/ok', 'video.ready', videoId), { what: 'video.ready', timeoutMs: 30_000 })
    t.ok(verifyWebhook(OK_SECRET, got.signature, got.body, Date.now()), 'the HMAC verifies with the receiver secret')
    t.notOk(verifyWebhook(FLAKY_SECRET, got.signature, got.body, Date.now()), 'signed with this receiver’s secret')
    t.match(got.signature, /^t=\d+,v1=[0-9a-f]{64}$/)
    t.match(got.event, { type: 'video.ready', data: { id: videoId, status: 'ready', durationS: 4 } })
    t.match(got.event.id, /\S/)
    t.type(got.event.createdAtMs, 'number')
  })

  t.test('a receiver that fails twice gets the event on the third try; the list shows 3 attempts', async (t) => {
    const got = await waitFor(() => eventOf('/flaky', 'video.ready', readyVideoId), {
      what: 'video.ready at /flaky',
      timeoutMs: 30_000,
    })
    t.ok(verifyWebhook(FLAKY_SECRET, got.signature, got.body, Date.now()))
    t.equal(flakyTries.get(got.event.id), 3)
    const row = (await deliveries()).find((d) => d.eventId === got.event.id && d.url === `${recvUrl}/flaky`)
    t.match(row, { type: 'video.ready', status: 'delivered', attempts: 3, lastStatus: 200, nextAttemptAtMs: null })
    const ok = (await deliveries()).find((d) => d.eventId === got.event.id && d.url === `${recvUrl}/ok`)
    t.match(ok, { status: 'delivered', attempts: 1 })
  })

  t.test('a receiver that never answers blocks neither the API nor other receivers, and times out', async (t) => {
    await waitFor(() => hanging.size > 0, { what: 'a hanging delivery', timeoutMs: 30_000 })
    const r = await api(`/v1/videos/${readyVideoId}`, { as: ['alice', 'uploader'] })
    t.equal(r.status, 200, 'the API answers while a delivery hangs')
    t.ok(hanging.size > 0, 'the delivery was still hanging')
    const row = await waitFor(
      async () =>
        (await deliveries()).find(
          (d) => d.url === `${recvUrl}/hang` && d.type === 'video.ready' && d.lastError === 'timeout',
        ),
      { what: 'a timed-out attempt', timeoutMs: 30_000 },
    )
    t.ok(row.attempts >= 1)
  })

  t.test('a receiver that resets the connection is retried; one with a huge answer is not read', async (t) => {
    const rows = await waitFor(
      async () => {
        const all = (await deliveries()).filter((d) => d.type === 'video.ready')
        const reset = all.find((d) => d.url === `${recvUrl}/reset` && d.status === 'failed')
        const huge = all.find((d) => d.url === `${recvUrl}/huge` && d.status === 'delivered')
        return reset !== undefined && huge !== undefined ? { reset, huge } : null
      },
      { what: 'the reset and huge deliveries settled', timeoutMs: 30_000 },
    )
    t.match(rows.reset, { attempts: 3, lastError: 'unreachable', nextAttemptAtMs: null })
    t.match(rows.huge, { attempts: 1, lastStatus: 200 })
    t.equal(hugeStarted, 1, 'the huge answer counted as delivered at once')
    t.equal((await api(`/v1/videos/${readyVideoId}`, { as: ['alice', 'uploader'] })).status, 200, 'the origin lives')
  })

  t.test('a failed job sends video.failed with the coded error', async (t) => {
    const { videoId, jobId } = await claimedVideo()
    const fail = await worker(`/v1/jobs/${jobId}/fail`, {
      error: { code: 'ERR_TRANSCODE_FAILED', message: 'the encoder gave up', isRetryable: false },
    })
    t.equal(fail.status, 200)
    const got = await waitFor(() => eventOf('/ok', 'video.failed', videoId), {
      what: 'video.failed',
      timeoutMs: 30_000,
    })
    t.ok(verifyWebhook(OK_SECRET, got.signature, got.body, Date.now()))
    t.match(got.event.data, { id: videoId, status: 'failed', error: { code: 'ERR_TRANSCODE_FAILED' } })
  })

  t.test('DELETE sends video.deleted with the id', async (t) => {
    const del = await api(`/v1/videos/${readyVideoId}`, { method: 'DELETE', as: ['alice', 'uploader'] })
    t.equal(del.status, 200)
    const got = await waitFor(() => eventOf('/ok', 'video.deleted', readyVideoId), {
      what: 'video.deleted',
      timeoutMs: 30_000,
    })
    t.ok(verifyWebhook(OK_SECRET, got.signature, got.body, Date.now()))
    t.same(got.event.data, { id: readyVideoId })
  })

  t.test('only an admin lists deliveries', async (t) => {
    const r = await api('/v1/webhooks/deliveries', { as: ['alice', 'uploader'] })
    t.equal(r.status, 403)
    const bad = await api('/v1/webhooks/deliveries?limit=0', { as: ['root', 'admin'] })
    t.equal(bad.status, 400)
  })
})

t.test('a delivery cut short by a restart is sent by the next origin on the same data', async (t) => {
  const tmp = tempDir()
  t.teardown(tmp.remove)
  let isAnswering = false
  const held = new Set<ServerResponse>()
  const bodies: string[] = []
  // Holds every request until the origin is gone; answers 200 afterwards.
  const receiver = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString('utf8')))
    req.on('end', () => {
      if (!isAnswering) {
        held.add(res)
        res.on('close', () => held.delete(res))
        return
      }
      bodies.push(body)
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const res of held) res.destroy()
        receiver.close(() => resolve())
      }),
  )
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`
  const config = {
    tierSecret: SECRET,
    dataDir: join(tmp.dir, 'data'),
    store: { kind: 'fs', dir: join(tmp.dir, 'store') },
    jwt: JWT,
    accessLog: false,
    webhooks: [{ url, secret: OK_SECRET }],
    webhookDelivery: { timeoutMs: 60_000, pollEveryMs: 20 },
  }
  const auth = { authorization: `Bearer ${mintToken({ sub: 'alice', role: 'uploader', ttlS: 600 }, JWT)}` }
  const first = await startTier('origin', config, { dir: tmp.dir })
  let isFirstStopped = false
  t.teardown(() => (isFirstStopped ? undefined : first.stop()))
  const created = await fetch(`${first.url}/v1/videos`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: '{}',
  })
  const { id } = (await created.json()) as { id: string }
  t.equal((await fetch(`${first.url}/v1/videos/${id}`, { method: 'DELETE', headers: auth })).status, 200)
  await waitFor(() => held.size > 0, { what: 'the first attempt', timeoutMs: 30_000 })
  await first.stop()
  isFirstStopped = true
  isAnswering = true

  const second = await startTier('origin', config, { dir: tmp.dir })
  t.teardown(() => second.stop())
  await waitFor(() => bodies.length > 0, { what: 'the delivery after the restart', timeoutMs: 30_000 })
  const event = JSON.parse(bodies[0] as string) as Received['event']
  t.match(event, { type: 'video.deleted', data: { id } })
})
