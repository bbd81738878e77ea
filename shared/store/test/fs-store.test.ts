import t from 'tap'
import { mkdtemp, readdir, rm, stat, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FsStore } from '../index.js'
import { storeContract } from './contract.js'

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'vcdn-fs-store-'))
}

t.test('FsStore passes the Store contract', async (t) => {
  storeContract(t, async () => {
    const dir = await tempDir()
    return { store: new FsStore({ dir }), cleanup: () => rm(dir, { recursive: true, force: true }) }
  })
})

t.test('the constructor names the invalid field', async (t) => {
  t.throws(() => new FsStore({ dir: '' }), /options\.dir/)
  // @ts-expect-error: checking the runtime validation
  t.throws(() => new FsStore({}), /options\.dir/)
})

t.test('objects live at <dir>/<key> so operators can inspect them', async (t) => {
  const dir = await tempDir()
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const store = new FsStore({ dir })
  await store.put('v/abc/720p/seg_00001.m4s', Buffer.from('bytes'))
  t.equal((await stat(join(dir, 'v/abc/720p/seg_00001.m4s'))).size, 5)
})

t.test('a failed put leaves no temp file on disk', async (t) => {
  const dir = await tempDir()
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const store = new FsStore({ dir })
  async function* failing(): AsyncIterable<Uint8Array> {
    yield Buffer.alloc(1000)
    throw new Error('nope')
  }
  await t.rejects(store.put('v/abc/x.m4s', failing()))
  t.same(await readdir(join(dir, 'v/abc')), [])
})

t.test('foreign and temp files in the directory are not listed', async (t) => {
  const dir = await tempDir()
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const store = new FsStore({ dir })
  await store.put('v/a/ok.m4s', Buffer.from('1'))
  await writeFile(join(dir, 'v/a/ok.m4s~tmp-1-abc'), 'leftover from a crash')
  await writeFile(join(dir, 'v/a/has space'), 'foreign')
  t.same(
    (await store.list('v/')).map((i) => i.key),
    ['v/a/ok.m4s'],
  )
})

t.test('deletePrefix removes the emptied directories', async (t) => {
  const dir = await tempDir()
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const store = new FsStore({ dir })
  await store.put('v/abc/720p/seg_00001.m4s', Buffer.from('1'))
  await store.put('v/abc/master.m3u8', Buffer.from('1'))
  await store.put('v/keep/master.m3u8', Buffer.from('1'))
  t.equal(await store.deletePrefix('v/abc/'), 2)
  t.same(await readdir(join(dir, 'v')), ['keep'])
})

t.test('a key whose parent is an object, or that names a prefix, is refused', async (t) => {
  const dir = await tempDir()
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const store = new FsStore({ dir })
  await store.put('v/abc', Buffer.from('file'))
  await t.rejects(store.put('v/abc/x', Buffer.from('1')), { code: 'ERR_STORE_KEY' })
  await mkdir(join(dir, 'v/dir/sub'), { recursive: true })
  await t.rejects(store.put('v/dir', Buffer.from('1')), { code: 'ERR_STORE_KEY' })
  t.equal(await store.delete('v/dir'), false)
})

t.test('puts racing deletePrefix on the same directory all succeed', async (t) => {
  const dir = await tempDir()
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const store = new FsStore({ dir })
  for (let round = 0; round < 20; round++) {
    await store.put('v/r/a.m4s', Buffer.from('a'))
    const [count, info] = await Promise.all([store.deletePrefix('v/r/'), store.put('v/r/b.m4s', Buffer.from('b'))])
    t.ok(count >= 1)
    t.equal(info.size, 1)
    await store.deletePrefix('v/r/')
  }
})
