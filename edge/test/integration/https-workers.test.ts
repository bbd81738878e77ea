// HTTPS with `workers: 2` (docs/architecture.md §9.1): every worker thread has its own HTTPS
// listener on the shared port, and a SIGHUP to the process makes each of them re-read the
// certificate files. Real origin, shield and edge processes on 127.0.0.1.
import t from 'tap'
import { request } from 'node:https'
import { connect } from 'node:tls'
import { makeTestCa, tempDir, waitFor } from '../../../shared/testing/index.js'
import { randomBytes, topology } from './topology.js'

/** New TLS connections to make in a row: the kernel's SO_REUSEPORT hash spreads them over the workers. */
const CONNECTIONS = 24

/** The fingerprint of the certificate a new connection is given. */
function peer(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'edge.test' }, () => {
      resolve(socket.getPeerCertificate().fingerprint256)
      socket.destroy()
    })
    socket.once('error', reject)
  })
}

/** GET on a new HTTPS connection trusting only `ca`: status and body length. */
function httpsGet(port: number, ca: string, path: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, ca, servername: 'edge.test', path, agent: false }, (res) => {
      let bytes = 0
      res.on('data', (b: Buffer) => (bytes += b.length))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** CONNECTIONS GETs, each on a new HTTPS connection: the ones that did not get `bytes` with a 200. */
async function failedGets(
  port: number,
  ca: string,
  path: string,
  bytes: number,
): Promise<{ status: number; bytes: number }[]> {
  const served = []
  for (let i = 0; i < CONNECTIONS; i++) served.push(await httpsGet(port, ca, path))
  return served.filter((r) => r.status !== 200 || r.bytes !== bytes)
}

const count = (text: string, needle: string): number => text.split(needle).length - 1

t.test('an edge with workers: 2 serves HTTPS from every worker and reloads each on SIGHUP', async (t) => {
  const tmp = tempDir('vcdn-https-workers-')
  t.teardown(tmp.remove)
  const ca = makeTestCa(tmp.dir)
  const first = ca.issue(['edge.test'], { file: 'edge' })
  const topo = await topology({
    shields: 1,
    edge: {
      workers: 2,
      tls: { cert: first.cert, key: first.key, watchIntervalMs: 0, listen: { host: '127.0.0.1', port: 0 } },
    },
  })
  t.teardown(() => topo.close())
  const edge = topo.edge
  const port = edge.tlsPort
  t.ok(port > 0 && port !== edge.port, `an HTTPS port beside the plain one (${port})`)
  await waitFor(() => count(edge.output(), 'tls loaded') >= 2, { what: 'both workers listening on HTTPS' })
  t.equal(count(edge.output(), 'tls loaded'), 2, 'each worker has its HTTPS listener')

  await topo.store.put('v/tlsw/720p/seg_00001.m4s', randomBytes(200_000, 5))
  const seg = topo.sign('/v/tlsw/720p/seg_00001.m4s')
  t.same(
    await failedGets(port, ca.certPem, seg, 200_000),
    [],
    `${CONNECTIONS} new HTTPS connections: each served every byte`,
  )
  const plain = await fetch(edge.url + seg)
  t.equal((await plain.arrayBuffer()).byteLength, 200_000, 'plain HTTP still serves')

  const second = ca.issue(['edge.test'], { file: 'edge' })
  edge.proc.kill('SIGHUP')
  await waitFor(() => count(edge.output(), 'tls reloaded') >= 2, {
    timeoutMs: 30_000,
    what: 'both workers reloaded',
  })
  t.equal(count(edge.output(), 'tls reloaded'), 2, 'each worker reloaded once')
  // A connection queued on a replaced listener may be reset outside a namespace with
  // net.ipv4.tcp_migrate_req = 1 (https.test.ts covers the swap without failures): one retry each.
  const seen: string[] = []
  for (let i = 0; i < CONNECTIONS; i++) {
    seen.push(await peer(port, ca.certPem).catch(() => peer(port, ca.certPem)))
  }
  t.same(
    seen.filter((fp) => fp !== second.fingerprint256),
    [],
    `${CONNECTIONS} new connections after the reload: each given the new certificate`,
  )
  t.not(second.fingerprint256, first.fingerprint256, 'a different certificate')
  t.equal(edge.proc.exitCode, null, 'still running')
})

t.test('with workers: 2 and no tls.listen, HTTPS takes the plain listener’s place in every worker', async (t) => {
  const tmp = tempDir('vcdn-https-workers-only-')
  t.teardown(tmp.remove)
  const ca = makeTestCa(tmp.dir)
  const pair = ca.issue(['edge.test'], { file: 'edge' })
  const topo = await topology({
    shields: 1,
    edge: { workers: 2, tls: { cert: pair.cert, key: pair.key, watchIntervalMs: 0 } },
  })
  t.teardown(() => topo.close())
  const edge = topo.edge
  t.equal(edge.tlsPort, edge.port, 'the public port speaks HTTPS')
  await waitFor(() => count(edge.output(), 'tls loaded') >= 2, { what: 'both workers listening on HTTPS' })
  await topo.store.put('v/tlso/720p/seg_00001.m4s', randomBytes(50_000, 6))
  const seg = topo.sign('/v/tlso/720p/seg_00001.m4s')
  t.same(
    await failedGets(edge.port, ca.certPem, seg, 50_000),
    [],
    `${CONNECTIONS} new HTTPS connections: each served every byte`,
  )
})
