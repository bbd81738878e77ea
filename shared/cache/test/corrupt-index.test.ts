// A damaged SQLite index never stops a node: on open it is moved aside, counted, logged, and the
// disk tier starts empty (the object files carry no key, so the orphans are removed); a node then
// serves a miss and a hit as usual. Damage found at run time is answered as a miss.
import { open as openFile, readdir, stat, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test as TapTest } from 'tap'
import Database from 'better-sqlite3'
import type { CacheLogger } from '../index.js'
import { bytes, harness, ok, type Harness } from './fixtures/harness.js'

const KEYS = 120
const PAGE = 4096

interface Logged {
  level: 'info' | 'warn' | 'error'
  msg: string
  obj: unknown
}

function recordingLog(lines: Logged[]): CacheLogger {
  const at =
    (level: Logged['level']) =>
    (obj: unknown, msg?: string): void => {
      lines.push({ level, obj, msg: msg ?? '' })
    }
  return { info: at('info'), warn: at('warn'), error: at('error') }
}

async function countObjectFiles(dir: string): Promise<number> {
  let n = 0
  for (const sub of await readdir(join(dir, 'objects'))) n += (await readdir(join(dir, 'objects', sub))).length
  return n
}

/** An engine whose index holds KEYS disk objects (not in memory: memoryObjectMaxBytes 1), closed. */
async function filledThenClosed(t: TapTest, lines: Logged[]): Promise<Harness> {
  const h = await harness(t, { memoryObjectMaxBytes: 1, log: recordingLog(lines) })
  h.upstream.handler = (key) => ok(bytes(1000, key.length))
  for (let i = 0; i < KEYS; i++) await h.get(`/v/c/seg_${i}.m4s`)
  t.equal(h.engine.counters.objects, KEYS)
  await h.engine.close()
  return h
}

/** Overwrite every page but the first (the header) with pseudo-random bytes. */
async function overwritePages(path: string): Promise<void> {
  const size = (await stat(path)).size
  const fh = await openFile(path, 'r+')
  try {
    for (let page = 1; page * PAGE < size; page++) await fh.write(bytes(PAGE, page + 7), 0, PAGE, page * PAGE)
  } finally {
    await fh.close()
  }
}

const corruptions: Array<[string, (path: string) => Promise<void>]> = [
  [
    'bad header bytes',
    async (path) => {
      const fh = await openFile(path, 'r+')
      await fh.write(Buffer.from('this is no SQLite header'), 0, 24, 0)
      await fh.close()
    },
  ],
  ['a truncated file', async (path) => truncate(path, Math.floor((await stat(path)).size / 2))],
  ['random pages overwritten', overwritePages],
]

for (const [what, corrupt] of corruptions) {
  void t.test(
    `an index with ${what} is moved aside and the node starts empty, then serves a miss and a hit`,
    async (t) => {
      const lines: Logged[] = []
      const h = await filledThenClosed(t, lines)
      const indexPath = join(h.dir, 'index.sqlite')
      await corrupt(indexPath)
      const engine = await h.open()
      t.equal(engine.counters.indexRebuilds, 1, 'the rebuild is counted')
      t.equal(engine.counters.objects, 0, 'the disk tier starts empty')
      t.equal(engine.counters.diskBytes, 0)
      t.equal(await countObjectFiles(h.dir), 0, 'orphaned object files are removed')
      const warning = lines.find((l) => l.level === 'warn' && l.msg.includes('cache index damaged'))
      t.ok(warning, 'a warning is logged')
      const aside = (await readdir(h.dir)).filter((n) => n.startsWith('index.sqlite.corrupt-'))
      t.ok(
        aside.includes(`index.sqlite.corrupt-${h.clock.now}`),
        `damaged file kept for inspection: ${aside.join(' ')}`,
      )
      const calls = h.upstream.calls.length
      t.equal((await h.get('/v/c/seg_1.m4s')).result.outcome, 'MISS')
      const hit = await h.get('/v/c/seg_1.m4s')
      t.equal(hit.result.outcome, 'HIT')
      t.equal(hit.sink.body.length, 1000)
      t.equal(h.upstream.calls.length, calls + 1, 'one upstream request')
      t.equal(engine.counters.objects, 1)
    },
  )
}

void t.test('a sound index is neither moved aside nor counted', async (t) => {
  const lines: Logged[] = []
  const h = await filledThenClosed(t, lines)
  const engine = await h.open()
  t.equal(engine.counters.indexRebuilds, 0)
  t.equal(engine.counters.objects, KEYS)
  t.same(
    (await readdir(h.dir)).filter((n) => n.includes('corrupt')),
    [],
  )
  t.equal((await h.get('/v/c/seg_1.m4s')).result.outcome, 'HIT')
})

void t.test('damage found at run time is answered as a miss, counted, and rebuilt on the next open', async (t) => {
  const lines: Logged[] = []
  const h = await filledThenClosed(t, lines)
  const indexPath = join(h.dir, 'index.sqlite')
  const engine = await h.open()
  t.equal(engine.counters.indexRebuilds, 0)
  await overwritePages(indexPath)
  // The engine's connection keeps pages it has read; a write by another connection makes it
  // re-read them (the WAL index changed), as happens when the damage is on the disk already.
  const other = new Database(indexPath)
  other.exec('CREATE TABLE IF NOT EXISTS poke (x INTEGER)')
  other.close()
  const miss = await h.get('/v/c/seg_2.m4s')
  t.not(miss.result.status, 500, 'not an internal error')
  t.equal(miss.result.outcome, 'MISS')
  t.equal(miss.sink.body.length, 1000, 'served whole from upstream')
  t.ok(engine.counters.indexErrors >= 1, `counted: ${engine.counters.indexErrors}`)
  t.ok(
    lines.some((l) => l.level === 'error' && l.msg.includes('damaged at run time')),
    'logged',
  )
  await engine.close()
  const next = await h.open()
  t.equal(next.counters.indexRebuilds, 1, 'the next open rebuilds it')
  t.equal((await h.get('/v/c/seg_2.m4s')).result.outcome, 'MISS')
  t.equal((await h.get('/v/c/seg_2.m4s')).result.outcome, 'HIT')
})
