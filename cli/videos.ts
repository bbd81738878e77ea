// `vcdn videos list` and `vcdn videos delete <id>`: the creator's videos through the control API
// (GET /v1/videos, cursor-paginated newest first; DELETE /v1/videos/:id).
import { api, type ApiTarget } from './upload.js'

export interface VideoRow {
  id: string
  status: string
  progress: number
  createdAtMs: number
}

const PAGE = 100
const MAX_PAGES = 1000

/** Every video the token may see, newest first (bounded: at most MAX_PAGES pages). */
export async function listVideos(target: ApiTarget): Promise<VideoRow[]> {
  const rows: VideoRow[] = []
  let cursor: string | null = null
  for (let page = 0; page < MAX_PAGES; page++) {
    const q: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`
    const res: { videos: VideoRow[]; nextCursor: string | null } = await api(
      target,
      'GET',
      `/v1/videos?limit=${PAGE}${q}`,
    )
    rows.push(...res.videos)
    if (res.nextCursor === null) break
    cursor = res.nextCursor
  }
  return rows
}

/** A fixed-width table: id, status, progress (%), created (UTC, ISO 8601 to the second). */
export function videoTable(rows: readonly VideoRow[]): string {
  const cells = [
    ['ID', 'STATUS', 'PROGRESS', 'CREATED'],
    ...rows.map((v) => [
      v.id,
      v.status,
      `${((v.progress ?? 0) * 100).toFixed(0)}%`,
      new Date(v.createdAtMs).toISOString().slice(0, 19) + 'Z',
    ]),
  ]
  const widths = [0, 1, 2].map((i) => Math.max(...cells.map((r) => (r[i] ?? '').length)))
  return cells.map((r) => r.map((c, i) => (i < 3 ? c.padEnd(widths[i] ?? 0) : c)).join('  ')).join('\n') + '\n'
}

export async function deleteVideo(target: ApiTarget, id: string): Promise<{ id: string; deleted: boolean }> {
  return api(target, 'DELETE', `/v1/videos/${encodeURIComponent(id)}`)
}
