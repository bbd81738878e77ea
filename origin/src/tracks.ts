// The audio and subtitle tracks of a ready video, as its published master playlist lists them
// (docs/architecture.md §8): the view of GET /v1/videos/:id reads them from the store, so what it
// shows is exactly what players are offered, with no copy in the metadata to drift.
import { parseMaster } from '../../shared/hls/index.js'
import { videoStorePrefix } from '../../shared/namespace/index.js'
import type { Store } from '../../shared/store/index.js'

const MAX_MASTER_BYTES = 256 * 1024

export interface VideoTrack {
  readonly name: string
  readonly language: string | null
  readonly isDefault: boolean
}

export interface VideoTracks {
  readonly audio: readonly VideoTrack[]
  readonly subtitles: readonly VideoTrack[]
}

/** The tracks of a video's master playlist; null when it is missing or not a master playlist. */
export async function videoTracks(store: Store, videoId: string): Promise<VideoTracks | null> {
  const got = await store.get(`${videoStorePrefix(videoId)}master.m3u8`)
  if (got === null) return null
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of got.body as AsyncIterable<Buffer | string>) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    size += b.length
    if (size > MAX_MASTER_BYTES) return null
    chunks.push(b)
  }
  try {
    const master = parseMaster(Buffer.concat(chunks).toString('utf8'))
    const track = (r: { name: string; language?: string; isDefault: boolean }): VideoTrack => ({
      name: r.name,
      language: r.language ?? null,
      isDefault: r.isDefault,
    })
    return { audio: master.audio.map(track), subtitles: (master.subtitles ?? []).map(track) }
  } catch {
    return null
  }
}
