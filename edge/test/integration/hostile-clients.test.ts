// Clients that misbehave on purpose against the real edge, shield and origin processes: bodies
// that keep arriving after the answer. Nothing a client sends may end a process.
import t from 'tap'
import { RawConnection, startFullStack, tempDir, type TierProcess } from '../../../shared/testing/index.js'
import { topology, SECRET } from './topology.js'

const BODY = Buffer.alloc(4 * 1024 * 1024, 0x61)
const DEADLINE_MS = 60_000

interface Case {
  method: string
  path: string
  headers?: Record<string, string>
  status: number
}

/**
 * Send one request with a 4 MiB body the server answers before reading, then, once it answered, a
 * GET on the same connection, behind the body: the answer to the GET proves the server read past
 * the unwanted body without ending, and a new connection is served too.
 *
 * The GET is not pipelined before the first answer: RFC 9112 §9.3.2 asks clients not to pipeline
 * behind a non-idempotent method, and uWS closes a connection whose next request arrives while
 * the answer to the last is pending (it allows no asynchronous pipelining). A shield passing the
 * POST to its origin answers after a round trip: a GET pipelined behind it lost that answer about
 * once in 50 tries of a loop here, and once in a whole run of the suite.
 */
async function postAfterAnswer(tier: TierProcess, c: Case, followPath: string): Promise<number> {
  const conn = await RawConnection.open(tier.port)
  try {
    const extra = Object.entries(c.headers ?? {})
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')
    const head = `${c.method} ${c.path} HTTP/1.1\r\nHost: t\r\n${extra}Content-Length: ${BODY.byteLength}\r\n\r\n`
    const sent = conn.write(Buffer.concat([Buffer.from(head), BODY]))
    const first = await conn.response({ timeoutMs: DEADLINE_MS })
    await sent
    await conn.write(Buffer.from(`GET ${followPath} HTTP/1.1\r\nHost: t\r\n\r\n`))
    const second = await conn.response({ timeoutMs: DEADLINE_MS })
    if (!(second.status >= 200)) throw new Error(`no answer to the pipelined GET: ${second.status}`)
    return first.status
  } finally {
    conn.destroy()
  }
}

t.test('bodies that keep arriving after the answer', async (t) => {
  const topo = await topology({ shields: 1 })
  t.teardown(() => topo.close())
  const tiers: [string, () => TierProcess, Case[], string][] = [
    [
      'edge',
      () => topo.edge,
      [
        { method: 'POST', path: '/v/vid1/720p/seg_00001.m4s', status: 403 },
        { method: 'PUT', path: '/v/vid1/720p/seg_00001.m4s', status: 403 },
        { method: 'PATCH', path: '/v/vid1/720p/seg_00001.m4s', status: 403 },
        { method: 'DELETE', path: '/v/vid1/720p/seg_00001.m4s', status: 403 },
        { method: 'POST', path: topo.sign('/v/vid1/720p/seg_00001.m4s'), status: 405 },
      ],
      '/v/vid1/720p/seg_00001.m4s',
    ],
    [
      'shield',
      () => topo.shields[0]!,
      [
        { method: 'POST', path: '/v/vid1/720p/seg_00001.m4s', status: 401 },
        { method: 'PUT', path: '/v/vid1/720p/seg_00001.m4s', status: 401 },
        { method: 'POST', path: '/v/vid1/720p/seg_00001.m4s', headers: { 'x-vcdn-tier': SECRET }, status: 405 },
      ],
      '/v/vid1/720p/seg_00001.m4s',
    ],
    [
      'origin',
      () => topo.origin!,
      [
        { method: 'POST', path: '/v/vid1/720p/seg_00001.m4s', status: 401 },
        { method: 'POST', path: '/nowhere', status: 404 },
        { method: 'PUT', path: '/v1/videos/none', status: 405 },
        // The topology's origin runs without a control-API secret: the API answers 503 at once.
        { method: 'PATCH', path: '/v1/uploads/none', status: 503 },
        { method: 'DELETE', path: '/v1/videos/none', status: 503 },
      ],
      '/healthz',
    ],
  ]
  for (const [name, tier, cases, followPath] of tiers) {
    for (const c of cases) {
      const auth = c.headers === undefined ? '' : ' with the tier secret'
      t.test(
        `a 4 MiB ${c.method} ${c.path.slice(0, 24)}${auth} after a ${c.status} leaves the ${name} serving`,
        async (t) => {
          const status = await postAfterAnswer(tier(), c, followPath)
          t.equal(status, c.status, 'answered before the body was read')
          const health = await fetch(`${tier().adminUrl}/healthz`)
          t.equal(health.status, 200, 'a new connection is served')
          await health.arrayBuffer()
          t.equal(tier().proc.exitCode, null, 'the process is still running')
        },
      )
    }
  }
})

t.test('bodies that keep arriving after the origin control API answered', async (t) => {
  const tmp = tempDir('vcdn-hostile-')
  const stack = await startFullStack({ dir: tmp.dir, transcoders: 0 })
  t.teardown(async () => {
    await stack.close()
    tmp.remove()
  })
  const created = await stack.api<{ upload: { url: string } }>('POST', '/v1/videos', {
    title: 't',
    size: 2 * BODY.byteLength,
  })
  t.equal(created.status, 201)
  const upload = created.body.upload.url
  const bearer = { authorization: `Bearer ${stack.uploaderToken}` }
  const tus = { ...bearer, 'tus-resumable': '1.0.0', 'content-type': 'application/offset+octet-stream' }
  const cases: Case[] = [
    { method: 'POST', path: '/v1/videos', status: 401 },
    // Room for the body, at the wrong offset (the upload is at 0).
    { method: 'PATCH', path: upload, headers: { ...tus, 'upload-offset': '5' }, status: 409 },
    // Past the declared length.
    { method: 'PATCH', path: upload, headers: { ...tus, 'upload-offset': String(BODY.byteLength + 1) }, status: 413 },
    { method: 'PATCH', path: '/v1/uploads/none', headers: { ...tus, 'upload-offset': '0' }, status: 404 },
    { method: 'PUT', path: '/v1/videos/none', headers: bearer, status: 405 },
  ]
  for (const c of cases) {
    t.test(`a 4 MiB ${c.method} ${c.path.slice(0, 24)} after a ${c.status} leaves the origin serving`, async (t) => {
      const status = await postAfterAnswer(stack.origin, c, '/healthz')
      t.equal(status, c.status, 'answered before the body was read')
      t.equal(stack.origin.proc.exitCode, null, 'the process is still running')
    })
  }
})
