import t from 'tap'
import {
  contentPath,
  isVideoDir,
  isVideoId,
  parseContentPath,
  pathOfStoreKey,
  sourceStoreKey,
  sourceStorePrefix,
  storeKeyOf,
  validatePath,
  validateStoreKey,
  videoDir,
  videoStorePrefix,
} from '../index.js'

t.test('builds every path of a video under /v/{videoId}/ and its store key without the leading slash', async (t) => {
  t.equal(videoDir('abc'), '/v/abc/')
  t.equal(contentPath('abc', '720p/index.m3u8'), '/v/abc/720p/index.m3u8')
  t.equal(storeKeyOf('/v/abc/master.m3u8'), 'v/abc/master.m3u8')
  t.equal(pathOfStoreKey('v/abc/master.m3u8'), '/v/abc/master.m3u8')
  t.equal(videoStorePrefix('abc'), 'v/abc/')
  t.equal(sourceStorePrefix('abc'), 'sources/abc/')
  t.equal(sourceStoreKey('abc'), 'sources/abc/source')
  for (const file of ['master.m3u8', 'manifest.mpd', '720p/index.m3u8', '720p/seg_00001.m4s', 'thumbs/thumbs.vtt']) {
    const path = contentPath('AbC_-123456789xy', file)
    t.equal(validatePath(path), path, 'a valid key path')
    t.doesNotThrow(() => validateStoreKey(storeKeyOf(path)), 'a valid store key')
  }
})

t.test('parses a content path into its video id and file, or null outside the layout', async (t) => {
  t.same(parseContentPath('/v/abc/720p/seg_00001.m4s'), { videoId: 'abc', file: '720p/seg_00001.m4s' })
  t.same(parseContentPath('/v/abc/player.html'), { videoId: 'abc', file: 'player.html' })
  for (const path of ['/v/', '/v/abc', '/v/abc/', '/v//x', '/x/abc/y', '/t/tok/v/abc/x', ''])
    t.equal(parseContentPath(path), null, path)
})

t.test('a video directory is exactly /v/{one segment}/', async (t) => {
  t.ok(isVideoDir('/v/abc/'))
  for (const p of ['/', '/v/', '/v//', '/v/abc', '/v/abc/x/', '/x/abc/']) t.notOk(isVideoDir(p), p)
})

t.test('a video id is 1 to 255 URL-safe characters', async (t) => {
  for (const id of ['a', 'AbC_-123456789xy', 'x'.repeat(255)]) t.ok(isVideoId(id), id)
  for (const id of ['', 'a.b', 'a/b', 'x'.repeat(256), 'caf\u00e9']) t.notOk(isVideoId(id), id)
})
