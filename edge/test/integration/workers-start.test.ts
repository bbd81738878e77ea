// `workers: 2` start-up failures (docs/architecture.md §12): an edge that cannot have its port
// exits non-zero with the coded error instead of hanging or leaving worker threads behind.
import t from 'tap'
import { createServer } from 'node:net'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { metric, startTier, tempDir, waitFor } from '../../../shared/testing/index.js'
import { KEYS, SECRET } from './topology.js'

/** Generous for a busy machine: a start that hangs still fails the test well before tap's timeout. */
const EXIT_DEADLINE_MS = 60_000

t.test('an edge with workers: 2 on a port another listener holds exits non-zero with ERR_LISTEN_IN_USE', async (t) => {
  const tmp = tempDir('vcdn-workers-start-')
  t.teardown(() => tmp.remove())
  const holder = createServer()
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => holder.close(() => resolve())))
  const address = holder.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const started = startTier(
    'edge',
    {
      tierSecret: SECRET,
      listen: { host: '127.0.0.1', port },
      origin: 'http://127.0.0.1:9',
      signingKeys: KEYS,
      cache: { dir: join(tmp.dir, 'edge'), maxBytes: 64 * 1024 * 1024, memoryMaxBytes: 8 * 1024 * 1024 },
      workers: 2,
      accessLog: false,
      register: { isEnabled: false },
    },
    { dir: tmp.dir, timeoutMs: EXIT_DEADLINE_MS },
  )
  // startTier rejects with "exited with <code> before listening" and the output, or on its deadline.
  const err = await started.then(
    (edge) => {
      void edge.kill9()
      return new Error('the edge started')
    },
    (e: unknown) => e as Error,
  )
  t.match(err.message, /^edge exited with [1-9]\d* before listening/, 'the process exited non-zero')
  t.match(err.message, /ERR_LISTEN_IN_USE/, 'its output names the code')
})

t.test('an edge with workers: 0 runs one worker per core it may use and serves', async (t) => {
  const tmp = tempDir('vcdn-workers-start-')
  t.teardown(() => tmp.remove())
  const edge = await startTier(
    'edge',
    {
      tierSecret: SECRET,
      listen: { host: '127.0.0.1', port: 0 },
      origin: 'http://127.0.0.1:9',
      signingKeys: KEYS,
      cache: { dir: join(tmp.dir, 'edge'), maxBytes: 64 * 1024 * 1024, memoryMaxBytes: 8 * 1024 * 1024 },
      workers: 0,
      requireToken: false,
      accessLog: false,
      register: { isEnabled: false },
    },
    { dir: tmp.dir, timeoutMs: EXIT_DEADLINE_MS },
  )
  t.teardown(() => edge.stop())
  const cores = availableParallelism()
  await waitFor(async () => (await metric(edge.adminUrl, 'vcdn_edge_workers')) === cores, {
    timeoutMs: EXIT_DEADLINE_MS,
    what: `${cores} workers listening`,
  })
  t.equal(await metric(edge.adminUrl, 'vcdn_edge_workers'), cores, `one worker per core (${cores})`)
  // A request answered by a worker: the origin is down, so a coded 502 from the edge.
  const r = await fetch(`${edge.url}/v/none/720p/seg_00001.m4s`)
  t.equal(r.status, 502, 'a worker answers')
  t.match(((await r.json()) as { error?: { code?: string } }).error?.code, /^ERR_UPSTREAM_/, 'with its coded error')
})
