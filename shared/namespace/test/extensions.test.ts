import t from 'tap'
import { contentClassOf, contentTypeFor, DEFAULT_CONTENT_TYPE } from '../index.js'

t.test('one table gives every namespace file its media type and content class', async (t) => {
  const table: Array<[string, string, string]> = [
    ['/v/a/master.m3u8', 'application/vnd.apple.mpegurl', 'playlist'],
    ['/v/a/720p/index.m3u8', 'application/vnd.apple.mpegurl', 'playlist'],
    ['/v/a/manifest.mpd', 'application/dash+xml', 'playlist'],
    ['/v/a/thumbs/thumbs.vtt', 'text/vtt', 'playlist'],
    ['/v/a/720p/seg_00001.m4s', 'video/iso.segment', 'segment'],
    ['/v/a/720p/init.mp4', 'video/mp4', 'segment'],
    ['/v/a/720p/seg_00001.ts', 'video/mp2t', 'segment'],
    ['/v/a/thumbs/poster.jpg', 'image/jpeg', 'segment'],
    ['/v/a/thumbs/sprite_000.jpeg', 'image/jpeg', 'segment'],
    ['v/a/INIT.MP4', 'video/mp4', 'segment'],
    ['v/a/meta.json', 'application/json', 'other'],
    ['v/a/source', DEFAULT_CONTENT_TYPE, 'other'],
    ['v/a.b/source', DEFAULT_CONTENT_TYPE, 'other'],
    ['v/a/.m3u8', DEFAULT_CONTENT_TYPE, 'other'],
    ['v/a/file.bin', DEFAULT_CONTENT_TYPE, 'other'],
  ]
  for (const [path, type, contentClass] of table) {
    t.equal(contentTypeFor(path), type, `${path} media type`)
    t.equal(contentClassOf(path), contentClass, `${path} class`)
  }
})

t.test('the WebVTT thumbnail track is in the playlist class at the origin and in the cache alike', async (t) => {
  // It lists sprite URIs and is rewritten with them (docs/architecture.md §2): short freshness,
  // purged on reprocess. The cache used to treat it as "other".
  t.equal(contentClassOf('/v/a/thumbs/thumbs.vtt'), 'playlist')
  t.equal(contentClassOf('v/a/thumbs/THUMBS.VTT'), 'playlist')
})
