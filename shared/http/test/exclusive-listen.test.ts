// Exclusive listen: a port another process holds is a coded start-up error, never a shared port
// (uSockets sets SO_REUSEPORT unless told not to, and the kernel then splits connections).
import t from 'tap'
import { createServer } from 'node:net'
import { freePort, startTier, tempDir } from '../../testing/index.js'
import { HttpServer } from '../index.js'

t.test('a second server on a port a uWS server holds rejects with ERR_LISTEN_IN_USE', async (t) => {
  // An explicit port: uSockets sets SO_REUSEPORT (and SO_REUSEADDR) only when the port is not 0.
  const port = await freePort()
  const first = new HttpServer({ host: '127.0.0.1', port, handler: (_req, res) => res.end(Buffer.from('x')) })
  t.equal(await first.listen(), port)
  t.teardown(() => first.drain(0))
  const second = new HttpServer({ host: '127.0.0.1', port, handler: (_req, res) => res.end() })
  await t.rejects(second.listen(), { code: 'ERR_LISTEN_IN_USE' })
  const res = await fetch(`http://127.0.0.1:${port}/`)
  t.equal(await res.text(), 'x', 'the first server still answers')
})

t.test('a server on a port a non-uWS process holds rejects with ERR_LISTEN_IN_USE', async (t) => {
  const other = createServer()
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => other.close(() => resolve())))
  const address = other.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const server = new HttpServer({ host: '127.0.0.1', port, handler: (_req, res) => res.end() })
  await t.rejects(server.listen(), { code: 'ERR_LISTEN_IN_USE' })
})

t.test('an address that cannot be bound rejects with ERR_LISTEN_FAILED', async (t) => {
  // 192.0.2.1 (RFC 5737 TEST-NET-1) is on no interface of this machine: EADDRNOTAVAIL.
  const server = new HttpServer({ host: '192.0.2.1', port: 0, handler: (_req, res) => res.end() })
  await t.rejects(server.listen(), { code: 'ERR_LISTEN_FAILED', message: /EADDRNOTAVAIL/ })
})

t.test('a server restarts at once on the port a closed server held', async (t) => {
  // An explicit port, as tiers use in production: uSockets sets SO_REUSEADDR only then, which is
  // what lets a restart bind over the connections the old server left in TIME_WAIT.
  const port = await freePort()
  const first = new HttpServer({ host: '127.0.0.1', port, handler: (_req, res) => res.end(Buffer.from('x')) })
  t.equal(await first.listen(), port)
  await fetch(`http://127.0.0.1:${port}/`).then((r) => r.text())
  await first.drain(0)
  const again = new HttpServer({ host: '127.0.0.1', port, handler: (_req, res) => res.end() })
  t.equal(await again.listen(), port)
  await again.drain(0)
})

t.test('a node on a taken port exits with a coded error', async (t) => {
  const tmp = tempDir('vcdn-listen-')
  t.teardown(() => tmp.remove())
  const port = await freePort()
  const config = {
    tierSecret: 'tier-secret-for-tests-0123456789abcdef',
    listen: { host: '127.0.0.1', port },
    // Never contacted: the test sends no cacheable request.
    upstreams: ['http://127.0.0.1:9'],
    cache: { dir: `${tmp.dir}/cache` },
    accessLog: false,
  }
  const first = await startTier('shield', { ...config, cache: { dir: `${tmp.dir}/a` } }, { dir: tmp.dir })
  t.teardown(() => first.stop())
  const failure = await startTier('shield', { ...config, cache: { dir: `${tmp.dir}/b` } }, { dir: tmp.dir }).then(
    async (second) => {
      await second.stop()
      return null
    },
    (err: Error) => err,
  )
  t.ok(failure, 'the second shield does not start')
  t.match(failure?.message, /exited with [1-9]\d* before listening/, 'it exits non-zero')
  t.match(failure?.message, /ERR_LISTEN_IN_USE/, 'its output names the code')
  const res = await fetch(`${first.adminUrl}/healthz`)
  await res.arrayBuffer()
  t.equal(res.status, 200, 'the first shield still answers')
  t.equal(first.proc.exitCode, null, 'the first shield keeps running')
})
