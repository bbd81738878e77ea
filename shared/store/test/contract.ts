// The Store contract: every implementation (FsStore today, the S3 store later) runs this suite.
// `makeStore` returns a fresh, empty store for each subtest plus an optional cleanup.
import type { Test } from 'tap'
import { Readable } from 'node:stream'
import type { Store } from '../index.js'

export type MakeStore = () => Promise<{ store: Store; cleanup?: () => Promise<void> }>

async function readAll(body: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of body) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk))
  return Buffer.concat(chunks)
}

async function* chunked(data: Buffer, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < data.length; i += size) {
    await new Promise((r) => setImmediate(r))
    yield data.subarray(i, i + size)
  }
}

async function* failingAfter(data: Buffer, err: Error): AsyncIterable<Uint8Array> {
  yield data
  await new Promise((r) => setImmediate(r))
  throw err
}

async function getText(store: Store, key: string): Promise<string | null> {
  const got = await store.get(key)
  return got === null ? null : (await readAll(got.body)).toString()
}

function codeOf(err: unknown): unknown {
  return err !== null && typeof err === 'object' && 'code' in err ? err.code : undefined
}

export function storeContract(t: Test, makeStore: MakeStore): void {
  const withStore = (name: string, fn: (t: Test, store: Store) => Promise<void>): void => {
    t.test(name, async (t) => {
      const { store, cleanup } = await makeStore()
      if (cleanup) t.teardown(cleanup)
      await fn(t, store)
    })
  }

  withStore('put then get returns the same bytes and matching info', async (t, store) => {
    const data = Buffer.from('#EXTM3U\n#EXT-X-VERSION:7\n')
    const put = await store.put('v/abc/master.m3u8', data)
    t.equal(put.key, 'v/abc/master.m3u8')
    t.equal(put.size, data.length)
    t.match(put.etag, /^"[^"]+"$/, 'etag is strong and quoted')
    t.equal(put.contentType, 'application/vnd.apple.mpegurl')
    t.ok(Math.abs(put.lastModifiedMs - Date.now()) < 60_000, 'lastModifiedMs is epoch ms')
    const got = await store.get('v/abc/master.m3u8')
    t.ok(got)
    if (!got) return
    t.same(got.info, put)
    t.same(await readAll(got.body), data)
  })

  withStore('put streams an async iterable body', async (t, store) => {
    const data = Buffer.alloc(300_000)
    for (let i = 0; i < data.length; i++) data[i] = i % 251
    const put = await store.put('v/abc/720p/seg_00001.m4s', chunked(data, 16_384))
    t.equal(put.size, data.length)
    t.equal(put.contentType, 'video/iso.segment')
    const got = await store.get('v/abc/720p/seg_00001.m4s')
    t.same(got && (await readAll(got.body)), data)
  })

  withStore('put accepts a Node Readable as the body', async (t, store) => {
    await store.put('v/abc/thumbs/thumbs.vtt', Readable.from([Buffer.from('WEBVTT\n'), Buffer.from('\n')]))
    t.equal(await getText(store, 'v/abc/thumbs/thumbs.vtt'), 'WEBVTT\n\n')
  })

  withStore('stores an empty object', async (t, store) => {
    const put = await store.put('v/abc/empty.json', new Uint8Array(0))
    t.equal(put.size, 0)
    t.equal(await getText(store, 'v/abc/empty.json'), '')
  })

  withStore('head returns the info without a body and null when absent', async (t, store) => {
    const put = await store.put('v/abc/init.mp4', Buffer.from('ftyp'))
    t.same(await store.head('v/abc/init.mp4'), put)
    t.equal(await store.head('v/abc/missing.mp4'), null)
    t.equal(await store.get('v/abc/missing.mp4'), null)
    t.equal(await store.head('v/abc'), null, 'a prefix is not an object')
  })

  withStore('an explicit content type is kept', async (t, store) => {
    const put = await store.put('uploads/u1/source', Buffer.from('x'), { contentType: 'video/quicktime' })
    t.equal(put.contentType, 'video/quicktime')
    t.equal((await store.head('uploads/u1/source'))?.contentType, 'video/quicktime')
    const [listed] = await store.list('uploads/')
    t.equal(listed?.contentType, 'video/quicktime')
    await store.put('uploads/u1/source', Buffer.from('y'))
    t.equal(
      (await store.head('uploads/u1/source'))?.contentType,
      'application/octet-stream',
      'a later put without a type goes back to the default',
    )
  })

  withStore('get with a range returns the inclusive slice and full-object info', async (t, store) => {
    await store.put('v/abc/720p/seg_00002.m4s', Buffer.from('0123456789'))
    const mid = await store.get('v/abc/720p/seg_00002.m4s', { start: 2, end: 5 })
    t.equal(mid && (await readAll(mid.body)).toString(), '2345')
    t.equal(mid?.info.size, 10, 'info describes the whole object')
    const one = await store.get('v/abc/720p/seg_00002.m4s', { start: 9, end: 9 })
    t.equal(one && (await readAll(one.body)).toString(), '9')
    const clamped = await store.get('v/abc/720p/seg_00002.m4s', { start: 7, end: 1000 })
    t.equal(clamped && (await readAll(clamped.body)).toString(), '789', 'end past the size is clamped')
    await t.rejects(store.get('v/abc/720p/seg_00002.m4s', { start: 10, end: 12 }), { code: 'ERR_REQUEST_RANGE' })
    await t.rejects(store.get('v/abc/720p/seg_00002.m4s', { start: 5, end: 4 }), { code: 'ERR_REQUEST_RANGE' })
    t.equal(await store.get('v/abc/720p/none.m4s', { start: 0, end: 1 }), null)
  })

  withStore('replacing an object changes its etag and content atomically', async (t, store) => {
    const first = await store.put('v/abc/720p/index.m3u8', Buffer.from('one'))
    const second = await store.put('v/abc/720p/index.m3u8', Buffer.from('two'))
    t.not(first.etag, second.etag)
    t.equal(await getText(store, 'v/abc/720p/index.m3u8'), 'two')
    const third = await store.put('v/abc/720p/index.m3u8', Buffer.from('two'))
    t.not(third.etag, second.etag, 'a rewrite with equal bytes is still a new version')
    t.equal((await store.head('v/abc/720p/index.m3u8'))?.etag, third.etag, 'head etag is stable')
    t.equal((await store.head('v/abc/720p/index.m3u8'))?.etag, third.etag)
  })

  withStore('a reader that opened the old version keeps reading it during a replace', async (t, store) => {
    const old = Buffer.alloc(200_000, 1)
    await store.put('v/abc/1080p/seg_00001.m4s', old)
    const reading = await store.get('v/abc/1080p/seg_00001.m4s')
    await store.put('v/abc/1080p/seg_00001.m4s', Buffer.alloc(100_000, 2))
    t.same(reading && (await readAll(reading.body)), old)
    t.equal((await store.head('v/abc/1080p/seg_00001.m4s'))?.size, 100_000)
  })

  withStore('a put whose body throws leaves the previous object and nothing else', async (t, store) => {
    const before = await store.put('v/abc/manifest.mpd', Buffer.from('<MPD/>'))
    const boom = new Error('producer failed')
    await t.rejects(
      store.put('v/abc/manifest.mpd', failingAfter(Buffer.from('<MPD partial'), boom)),
      boom,
      'the producer error is propagated as is',
    )
    t.same(await store.head('v/abc/manifest.mpd'), before)
    t.equal(await getText(store, 'v/abc/manifest.mpd'), '<MPD/>')
    await t.rejects(store.put('v/abc/new.m4s', failingAfter(Buffer.from('xx'), boom)), boom)
    t.equal(await store.head('v/abc/new.m4s'), null)
    t.same(
      (await store.list('v/abc/')).map((i) => i.key),
      ['v/abc/manifest.mpd'],
      'no temp object is listed',
    )
  })

  withStore('concurrent puts of one key end with exactly one complete version', async (t, store) => {
    const bodies = [0, 1, 2, 3, 4, 5, 6, 7].map((n) => Buffer.alloc(64_000 + n * 1000, n))
    const results = await Promise.all(bodies.map((b) => store.put('v/abc/race.m4s', chunked(b, 8192))))
    const got = await store.get('v/abc/race.m4s')
    t.ok(got)
    if (!got) return
    const bytes = await readAll(got.body)
    const winner = bodies.findIndex((b) => b.equals(bytes))
    t.ok(winner >= 0, 'the stored bytes are one complete body')
    t.equal(got.info.etag, results[winner]?.etag, 'and its info is the one that put returned')
    t.same(
      (await store.list('v/abc/')).map((i) => i.key),
      ['v/abc/race.m4s'],
    )
  })

  withStore('delete removes an object and reports whether it existed', async (t, store) => {
    await store.put('v/abc/thumbs/poster.jpg', Buffer.from('jpg'))
    t.equal(await store.delete('v/abc/thumbs/poster.jpg'), true)
    t.equal(await store.head('v/abc/thumbs/poster.jpg'), null)
    t.equal(await store.delete('v/abc/thumbs/poster.jpg'), false)
    t.equal(await store.delete('v/nothing/here.jpg'), false)
    await store.put('v/abc/thumbs/poster.jpg', Buffer.from('again'))
    t.equal(await getText(store, 'v/abc/thumbs/poster.jpg'), 'again', 'the key can be written again')
  })

  withStore('deletePrefix removes exactly the keys under the prefix', async (t, store) => {
    const keys = [
      'v/abc/master.m3u8',
      'v/abc/720p/index.m3u8',
      'v/abc/720p/seg_00001.m4s',
      'v/abcd/master.m3u8',
      'v/ab.json',
    ]
    for (const key of keys) await store.put(key, Buffer.from(key))
    t.equal(await store.deletePrefix('v/abc/'), 3)
    t.same(
      (await store.list('')).map((i) => i.key),
      ['v/ab.json', 'v/abcd/master.m3u8'],
    )
    t.equal(await store.deletePrefix('v/abc/'), 0)
    t.equal(await store.deletePrefix('v/ab'), 2, 'a prefix need not end at a slash')
    t.same(await store.list(''), [])
    await t.rejects(store.deletePrefix(''), { code: 'ERR_STORE_KEY' })
  })

  withStore('list is sorted by key in byte order and filtered by prefix', async (t, store) => {
    // '-' < '.' < '/' < '0' < 'A' < '_' < 'a' in ASCII: nesting must not disturb the byte order.
    const keys = ['v/a/x', 'v/a-b', 'v/a.b', 'v/a0', 'v/aA', 'v/a_', 'v/ab/c', 'v/b', 'w', 'v/a/y/z']
    for (const key of keys) await store.put(key, Buffer.from('1'))
    const all = (await store.list('')).map((i) => i.key)
    t.same(all, [...keys].sort())
    t.same(
      (await store.list('v/a/')).map((i) => i.key),
      ['v/a/x', 'v/a/y/z'],
    )
    t.same(
      (await store.list('v/a')).map((i) => i.key),
      ['v/a-b', 'v/a.b', 'v/a/x', 'v/a/y/z', 'v/a0', 'v/aA', 'v/a_', 'v/ab/c'],
    )
    t.same(await store.list('nothing/'), [])
    const [first] = await store.list('w')
    t.equal(first?.size, 1)
    t.match(first?.etag, /^"/)
  })

  withStore('list paginates with limit and after', async (t, store) => {
    const keys: string[] = []
    for (let i = 0; i < 25; i++) keys.push(`v/p/${i % 3 === 0 ? 'sub/' : ''}seg_${String(i).padStart(5, '0')}.m4s`)
    for (const key of keys) await store.put(key, Buffer.from(key))
    const seen: string[] = []
    let after: string | undefined
    for (;;) {
      const page = await store.list('v/p/', after === undefined ? { limit: 7 } : { limit: 7, after })
      t.ok(page.length <= 7)
      seen.push(...page.map((i) => i.key))
      const last = page[page.length - 1]
      if (page.length < 7 || last === undefined) break
      after = last.key
    }
    t.same(seen, [...keys].sort(), 'pages concatenate to the full sorted listing')
    t.same(
      (await store.list('v/p/', { after: 'v/p/seg_00024.m4s' })).map((i) => i.key),
      [
        'v/p/sub/seg_00000.m4s',
        'v/p/sub/seg_00003.m4s',
        'v/p/sub/seg_00006.m4s',
        'v/p/sub/seg_00009.m4s',
        'v/p/sub/seg_00012.m4s',
        'v/p/sub/seg_00015.m4s',
        'v/p/sub/seg_00018.m4s',
        'v/p/sub/seg_00021.m4s',
        'v/p/sub/seg_00024.m4s',
      ],
    )
  })

  withStore('invalid keys are rejected with ERR_STORE_KEY', async (t, store) => {
    const bad = [
      '',
      '/v/abc/x',
      'v/abc/',
      'v//x',
      'v/../x',
      './x',
      'v/./x',
      'v/a b',
      'v/a%2fb',
      'v/a\0b',
      'v/a\\b',
      'v/é',
      'v/a~b',
      'x'.repeat(1025),
      `v/${'x'.repeat(256)}`,
    ]
    for (const key of bad) {
      const label = JSON.stringify(key.slice(0, 20))
      await t.rejects(store.put(key, Buffer.from('x')), { code: 'ERR_STORE_KEY' }, `put ${label}`)
      await t.rejects(store.head(key), { code: 'ERR_STORE_KEY' }, `head ${label}`)
      await t.rejects(store.get(key), { code: 'ERR_STORE_KEY' }, `get ${label}`)
      await t.rejects(store.delete(key), { code: 'ERR_STORE_KEY' }, `delete ${label}`)
    }
    for (const prefix of ['/v', 'v/../', 'v//', 'v/a b']) {
      await t.rejects(store.list(prefix), { code: 'ERR_STORE_KEY' }, `list ${JSON.stringify(prefix)}`)
      await t.rejects(store.deletePrefix(prefix), { code: 'ERR_STORE_KEY' }, `deletePrefix ${JSON.stringify(prefix)}`)
    }
    const err = await store.head('v/../etc').catch((e: unknown) => e)
    t.equal(codeOf(err), 'ERR_STORE_KEY')
    const longest = Array.from({ length: 8 }, () => 'x'.repeat(127)).join('/') // 8*127 + 7 = 1023 chars
    t.equal((await store.put(longest + 'y', Buffer.from('max length is fine'))).key.length, 1024)
  })
}
