// What a prewarm fetches (docs/architecture.md §7.4): the content paths a new viewer of a video asks
// for first — its HLS multivariant playlist and DASH MPD, every rendition's media playlist and init
// segment, and the first `segments` media segments of every rendition — read from the video's own
// playlists in the store, so what is warmed is exactly what players will request.
import { VcdnError } from '../../shared/errors/index.js'
import { parseMaster, parseMedia } from '../../shared/hls/index.js'
import { contentPath, DASH_MANIFEST, isValidPath, MASTER_PLAYLIST, storeKeyOf } from '../../shared/namespace/index.js'
import type { Store } from '../../shared/store/index.js'

/** A playlist larger than this is not one the transcoder wrote. */
const MAX_PLAYLIST_BYTES = 1024 * 1024

export const MAX_PREWARM_SEGMENTS = 100

/** The store object at a content path as text, or null when absent. */
async function readText(store: Store, path: string): Promise<string | null> {
  const got = await store.get(storeKeyOf(path))
  if (got === null) return null
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of got.body as AsyncIterable<Buffer | string>) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    size += b.length
    if (size > MAX_PLAYLIST_BYTES) {
      throw new VcdnError('ERR_VIDEO_STATE', `${path} is larger than a playlist`)
    }
    chunks.push(b)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** `uri` of a playlist at `base` (a file path within the video) as a path within the video, or null if it leaves it. */
function within(baseFile: string, uri: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(uri) || uri.startsWith('/')) return null
  const parts = baseFile.split('/').slice(0, -1)
  for (const part of uri.split('?')[0]?.split('/') ?? []) {
    if (part === '..') {
      if (parts.pop() === undefined) return null
    } else if (part !== '.' && part !== '') parts.push(part)
  }
  return parts.join('/')
}

/** The content paths to prewarm for a ready video; ERR_VIDEO_STATE when its playlists are missing. */
export async function prewarmKeys(store: Store, videoId: string, segments: number): Promise<string[]> {
  const master = await readText(store, contentPath(videoId, MASTER_PLAYLIST))
  if (master === null) throw new VcdnError('ERR_VIDEO_STATE', 'the video has no playlists')
  const files = new Set<string>([MASTER_PLAYLIST])
  const info = parseMaster(master)
  const mediaFiles = new Set<string>()
  for (const uri of [...info.variants.map((v) => v.uri), ...info.audio.map((a) => a.uri)]) {
    const file = uri === undefined ? null : within(MASTER_PLAYLIST, uri)
    if (file !== null) mediaFiles.add(file)
  }
  for (const file of mediaFiles) {
    const text = await readText(store, contentPath(videoId, file))
    if (text === null) continue
    files.add(file)
    const media = parseMedia(text)
    const rest = [media.mapUri, ...media.segments.slice(0, segments).map((s) => s.uri)]
    for (const uri of rest) {
      const segment = uri === undefined ? null : within(file, uri)
      if (segment !== null) files.add(segment)
    }
  }
  if ((await store.head(storeKeyOf(contentPath(videoId, DASH_MANIFEST)))) !== null) files.add(DASH_MANIFEST)
  return [...files].map((f) => contentPath(videoId, f)).filter(isValidPath)
}
