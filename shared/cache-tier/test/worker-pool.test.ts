// The worker pool's start (docs/architecture.md §9.1): a worker that cannot listen fails the start,
// and the pool is closed before the error is rethrown, so no thread is left serving.
import t, { type Test } from 'tap'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { CacheEngine } from '../../cache/index.js'
import { createLogger } from '../../log/index.js'
import { WorkerPool } from '../worker-pool.js'

const ENTRY = fileURLToPath(new URL('./fixtures/pool-worker.ts', import.meta.url))

/** Two stand-in workers (fixtures/pool-worker.ts) that leave their marks in a directory of their own. */
function standInPool(t: Test, mode: 'fail-second' | 'all-start'): { dir: string; pool: WorkerPool } {
  const dir = mkdtempSync(join(tmpdir(), 'vcdn-pool-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const pool = new WorkerPool({
    count: 2,
    port: 0,
    // The stand-in workers never ask the engine for anything.
    engine: {} as CacheEngine,
    log: createLogger({ tier: 'edge', level: 'silent' }),
    onCounts: () => {},
    onServed: () => {},
    onHint: () => {},
    entry: ENTRY,
    argv: [dir, mode],
  })
  return { dir, pool }
}

t.test('a worker that fails to start closes the workers already listening before the error goes on', async (t) => {
  const { dir, pool } = standInPool(t, 'fail-second')
  t.teardown(() => pool.close(0))
  await t.rejects(pool.start(), { message: 'worker 2 cannot listen' })
  t.ok(existsSync(join(dir, 'ready-1')), 'worker 1 was listening')
  t.equal(
    readFileSync(join(dir, 'closed-1'), 'utf8'),
    '0',
    'worker 1 was told to close (no drain) before start() rejected',
  )
  t.equal(pool.live, 0, 'no worker listens')
})

t.test('a pool whose workers all start closes them all', async (t) => {
  const { dir, pool } = standInPool(t, 'all-start')
  await pool.start()
  t.equal(pool.live, 2)
  await pool.close(5)
  t.equal(pool.live, 0)
  t.ok(existsSync(join(dir, 'closed-1')) && existsSync(join(dir, 'closed-2')), 'both were told to close')
})
