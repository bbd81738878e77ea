// HTTPS in the uWebSockets.js adapter: the default certificate and SNI entries, a reload that
// serves new connections from new files while an open connection goes on, and bad files.
import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { connect, type TLSSocket } from 'node:tls'
import { HttpServer, sendText, type TlsOptions } from '../index.js'
import { makeTestCa, tempDir, waitFor, type TestCa } from '../../testing/index.js'

interface Logged {
  level: string
  obj: object
  msg: string
}

function setup(t: Test): { dir: string; ca: TestCa } {
  const tmp = tempDir('vcdn-tls-')
  t.teardown(tmp.remove)
  return { dir: tmp.dir, ca: makeTestCa(tmp.dir) }
}

async function serve(t: Test, tls: TlsOptions, logged: Logged[] = []): Promise<HttpServer> {
  const log = {
    info: (obj: object, msg: string) => logged.push({ level: 'info', obj, msg }),
    warn: (obj: object, msg: string) => logged.push({ level: 'warn', obj, msg }),
    error: (obj: object, msg: string) => logged.push({ level: 'error', obj, msg }),
  }
  const server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    handler: (_req, res) => void sendText(res, 200, 'ok'),
    tls,
    log,
  })
  await server.listen()
  t.teardown(() => server.drain(0))
  return server
}

/** A TLS connection trusting only `ca`; resolves with it once the handshake is done. */
function open(port: number, ca: string, servername?: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, ...(servername ? { servername } : {}) }, () =>
      resolve(socket),
    )
    socket.once('error', reject)
  })
}

/** The fingerprint of the certificate a new connection is given. */
async function peer(port: number, ca: string, servername?: string): Promise<string> {
  const socket = await open(port, ca, servername)
  const fingerprint = socket.getPeerCertificate().fingerprint256
  socket.destroy()
  return fingerprint
}

/** One GET over an open connection (keep-alive); resolves with the status line and body. */
function get(socket: TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = ''
    const onData = (b: Buffer): void => {
      got += b.toString('latin1')
      if (got.includes('\r\n\r\n') && got.endsWith('ok')) {
        socket.off('data', onData)
        resolve(`${got.split('\r\n')[0]} ${got.slice(-2)}`)
      }
    }
    socket.on('data', onData)
    socket.once('error', reject)
    socket.write('GET /x HTTP/1.1\r\nHost: edge.test\r\n\r\n')
  })
}

t.test('SNI picks the entry for the name; other names and no SNI get the default', async (t) => {
  const { ca } = setup(t)
  const def = ca.issue(['edge.test', '127.0.0.1'])
  const a = ca.issue(['a.test'])
  const wild = ca.issue(['*.b.test'], { file: 'wild-b' })
  const server = await serve(t, {
    cert: def.cert,
    key: def.key,
    sni: [
      { serverName: 'a.test', ...a },
      { serverName: '*.b.test', cert: wild.cert, key: wild.key },
    ],
  })
  const port = server.tlsPort
  t.equal(await peer(port, ca.certPem, 'a.test'), a.fingerprint256, 'a.test')
  t.equal(await peer(port, ca.certPem, 'x.b.test'), wild.fingerprint256, 'x.b.test by the wildcard')
  t.equal(await peer(port, ca.certPem, 'edge.test'), def.fingerprint256, 'edge.test: the default')
  t.equal(await peer(port, ca.certPem), def.fingerprint256, 'no SNI: the default')
  // Requests are served under every name (uWS routes each server name separately).
  for (const name of ['a.test', 'x.b.test', 'edge.test']) {
    const s = await open(port, ca.certPem, name)
    t.equal(await get(s), 'HTTP/1.1 200 OK ok', `served under ${name}`)
    s.destroy()
  }
})

t.test('a reload serves new connections the new files; an open connection goes on', async (t) => {
  const { ca } = setup(t)
  const first = ca.issue(['edge.test', '127.0.0.1'], { file: 'edge' })
  const a1 = ca.issue(['a.test'], { file: 'a' })
  const logged: Logged[] = []
  const server = await serve(
    t,
    { cert: first.cert, key: first.key, sni: [{ serverName: 'a.test', cert: a1.cert, key: a1.key }] },
    logged,
  )
  const port = server.tlsPort
  const kept = await open(port, ca.certPem, 'a.test')
  const keptDefault = await open(port, ca.certPem, 'edge.test')
  t.equal(await get(kept), 'HTTP/1.1 200 OK ok')

  const second = ca.issue(['edge.test', '127.0.0.1'], { file: 'edge' })
  const a2 = ca.issue(['a.test'], { file: 'a' })
  t.equal(await server.reloadTls('test'), true, 'reloaded')
  t.equal(await peer(port, ca.certPem, 'edge.test'), second.fingerprint256, 'new default for new connections')
  t.equal(await peer(port, ca.certPem), second.fingerprint256, 'no SNI: new default too')
  t.equal(await peer(port, ca.certPem, 'a.test'), a2.fingerprint256, 'new SNI certificate')
  t.equal(await get(kept), 'HTTP/1.1 200 OK ok', 'the open SNI connection still serves')
  t.equal(await get(keptDefault), 'HTTP/1.1 200 OK ok', 'the open default connection still serves')
  t.equal(kept.getPeerCertificate().fingerprint256, a1.fingerprint256, 'on the certificate it began with')
  kept.destroy()
  keptDefault.destroy()
  t.ok(
    logged.some((l) => l.msg === 'tls reloaded'),
    'the reload is logged',
  )
  t.equal(await server.reloadTls('unchanged'), true, 'unchanged files: nothing to do')
})

t.test('a certificate changed on disk is picked up by the file watch', async (t) => {
  const { ca } = setup(t)
  const first = ca.issue(['edge.test'], { file: 'edge' })
  const server = await serve(t, { cert: first.cert, key: first.key, watchIntervalMs: 100 })
  const port = server.tlsPort
  t.equal(await peer(port, ca.certPem, 'edge.test'), first.fingerprint256)
  const second = ca.issue(['edge.test'], { file: 'edge' })
  const seen = await waitFor(
    async () => ((await peer(port, ca.certPem, 'edge.test')) === second.fingerprint256 ? true : null),
    { timeoutMs: 15_000, what: 'the rotated certificate' },
  )
  t.equal(seen, true, 'new connections get the rotated certificate')
})

t.test('bad files: a coded error at start; on reload the old certificate stays in service', async (t) => {
  const { dir, ca } = setup(t)
  const good = ca.issue(['edge.test'], { file: 'edge' })
  const other = ca.issue(['other.test'], { file: 'other' })
  const handler = (): void => undefined
  writeFileSync(`${dir}/garbage.crt`, 'not a certificate')
  const bad: [string, TlsOptions][] = [
    ['a missing file', { cert: `${dir}/missing.crt`, key: good.key }],
    ['a file that is no certificate', { cert: `${dir}/garbage.crt`, key: good.key }],
    ['a key of another certificate', { cert: good.cert, key: other.key }],
    [
      'a bad SNI entry',
      { cert: good.cert, key: good.key, sni: [{ serverName: 'a.test', cert: good.cert, key: other.key }] },
    ],
  ]
  for (const [what, tls] of bad) {
    t.throws(
      () => new HttpServer({ host: '127.0.0.1', port: 0, handler, tls }),
      { code: 'ERR_TLS_CERT' },
      `${what}: ERR_TLS_CERT`,
    )
  }

  const logged: Logged[] = []
  const server = await serve(t, { cert: good.cert, key: good.key }, logged)
  const port = server.tlsPort
  writeFileSync(good.cert, 'half-written renewal')
  t.equal(await server.reloadTls('test'), false, 'not reloaded')
  t.equal(await peer(port, ca.certPem, 'edge.test'), good.fingerprint256, 'the old certificate still serves')
  const failure = logged.find((l) => l.level === 'error')
  t.match(failure, { msg: /tls reload failed/, obj: { code: 'ERR_TLS_CERT' } }, 'the failure is logged with its code')
})

t.test('plain HTTP beside HTTPS on tls.listen', async (t) => {
  const { ca } = setup(t)
  const pair = ca.issue(['edge.test'])
  const server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    handler: (_req, res) => void sendText(res, 200, 'ok'),
    tls: { ...pair, listen: { host: '127.0.0.1', port: 0 } },
  })
  const port = await server.listen()
  t.teardown(() => server.drain(0))
  t.not(server.tlsPort, port, 'two listeners')
  t.equal(await (await fetch(`http://127.0.0.1:${port}/x`)).text(), 'ok', 'plain HTTP')
  const s = await open(server.tlsPort, ca.certPem, 'edge.test')
  t.equal(await get(s), 'HTTP/1.1 200 OK ok', 'HTTPS')
  s.destroy()
})
