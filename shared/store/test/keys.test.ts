import t from 'tap'
import { contentTypeFor, validateStoreKey, validateStorePrefix } from '../index.js'

t.test('contentTypeFor maps the content namespace extensions', async (t) => {
  const table: [string, string][] = [
    ['v/a/master.m3u8', 'application/vnd.apple.mpegurl'],
    ['v/a/720p/index.m3u8', 'application/vnd.apple.mpegurl'],
    ['v/a/manifest.mpd', 'application/dash+xml'],
    ['v/a/720p/seg_00001.m4s', 'video/iso.segment'],
    ['v/a/720p/init.mp4', 'video/mp4'],
    ['v/a/thumbs/poster.jpg', 'image/jpeg'],
    ['v/a/thumbs/thumbs.vtt', 'text/vtt'],
    ['v/a/meta.json', 'application/json'],
    ['v/a/INIT.MP4', 'video/mp4'],
    ['v/a/source', 'application/octet-stream'],
    ['v/a.b/source', 'application/octet-stream'],
    ['v/a/.m3u8', 'application/octet-stream'],
    ['v/a/file.bin', 'application/octet-stream'],
  ]
  for (const [key, type] of table) t.equal(contentTypeFor(key), type, key)
})

t.test('validateStoreKey accepts namespace keys and rejects escapes', async (t) => {
  for (const key of [
    'v/abc/master.m3u8',
    'a',
    'a/b-c_d.e',
    '...',
    'v/a..b',
    'x'.repeat(255),
    `${'x'.repeat(255)}/`.repeat(3) + 'x'.repeat(255),
  ]) {
    t.doesNotThrow(() => validateStoreKey(key), key.slice(0, 20))
  }
  for (const key of [
    '',
    '/a',
    'a/',
    'a//b',
    '.',
    '..',
    'a/./b',
    'a/../b',
    'a b',
    'a?b',
    'a#b',
    'x'.repeat(256),
    'x/'.repeat(512) + 'x',
  ]) {
    t.throws(() => validateStoreKey(key), { code: 'ERR_STORE_KEY' }, JSON.stringify(key.slice(0, 20)))
  }
})

t.test('validateStorePrefix allows a partial last segment', async (t) => {
  for (const prefix of ['', 'v', 'v/', 'v/ab', 'v/abc/', 'v/abc/7'])
    t.doesNotThrow(() => validateStorePrefix(prefix), prefix)
  for (const prefix of ['/', '/v', 'v//', '../', 'v/../', 'v/ a']) {
    t.throws(() => validateStorePrefix(prefix), { code: 'ERR_STORE_KEY' }, prefix)
  }
})
