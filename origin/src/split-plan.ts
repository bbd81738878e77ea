// Split-and-stitch (docs/architecture.md §7.3, §8): a video longer than `transcode.splitAboveS` is
// encoded as chunk jobs on the segment grid, `[k·L, (k+1)·L)` with L = `transcode.chunkS` a multiple
// of the segment duration, which any transcoder may take, plus (when the source has audio) one
// audio job encoding every track of the whole source beside them; one stitch job, queued only once
// all of these are done, concatenates the chunks per rung, copies the audio, packages and publishes.
//
// This module plans the chunks (pure) and keeps the state of a video's parts in the `split_chunks`
// table it creates: one row per chunk with its status, the workers that took it and how many times
// it was claimed, and the audio job as the row with index AUDIO_PART (−1: it sorts first, as it is
// queued first). Owned by the origin process; every write runs inside the caller's
// (VideoLifecycle's) transaction.
import {
  JOB_KIND_AUDIO,
  JOB_KIND_CHUNK,
  JOB_KIND_STITCH,
  JOB_KIND_TRANSCODE,
  workStorePrefix,
} from '../../shared/bus/index.js'
import type { Db, Statement } from './db.js'

export { JOB_KIND_AUDIO, JOB_KIND_CHUNK, JOB_KIND_STITCH, JOB_KIND_TRANSCODE, workStorePrefix }

/** The part index of a split video's audio job in `split_chunks` (chunks are 0..count-1). */
export const AUDIO_PART = -1

/** Whether a job of `kind` is a part of a split video (a chunk or the audio), stitched later. */
export function isSplitPart(kind: string): boolean {
  return kind === JOB_KIND_CHUNK || kind === JOB_KIND_AUDIO
}

/** The segment duration every chunk length must be a multiple of (docs/architecture.md §2: 4 s segments). */
export const SEGMENT_S = 4

/** A last chunk shorter than this joins the one before it. */
export const MIN_LAST_CHUNK_S = 1

export interface ChunkSpec {
  readonly index: number
  readonly startS: number
  /** chunkS, except the last chunk's (the rest of the source, rounded up: ffmpeg reads it to the end). */
  readonly lengthS: number
}

export interface SplitSettings {
  readonly splitAboveS: number
  readonly chunkS: number
}

/** The problem with a chunk length, or null: a positive whole multiple of the segment duration. */
export function chunkSProblem(chunkS: number): string | null {
  if (!(Number.isInteger(chunkS) && chunkS > 0 && chunkS % SEGMENT_S === 0)) {
    return `transcode.chunkS must be a positive multiple of the ${SEGMENT_S} s segment duration, got ${chunkS}`
  }
  return null
}

/**
 * The chunks of a video lasting `durationS`, or null when it is encoded whole (not longer than
 * splitAboveS, unknown duration, or one chunk would cover it). Chunk k covers [k·L, min((k+1)·L, d)).
 */
export function planChunks(durationS: number | null | undefined, s: SplitSettings): ChunkSpec[] | null {
  const problem = chunkSProblem(s.chunkS)
  if (problem !== null) throw new TypeError(problem)
  if (typeof durationS !== 'number' || !Number.isFinite(durationS) || durationS <= s.splitAboveS) return null
  let count = Math.ceil(durationS / s.chunkS)
  // A remainder under MIN_LAST_CHUNK_S (a container a few ms longer than its video, say) could hold
  // no frame at all: it joins the chunk before it, which stays on the grid (it only gets longer).
  if (count > 1 && durationS - (count - 1) * s.chunkS < MIN_LAST_CHUNK_S) count--
  if (count < 2) return null
  const chunks: ChunkSpec[] = []
  for (let index = 0; index < count; index++) {
    const startS = index * s.chunkS
    // The last chunk runs to the end of the source; its length is only a bound for ffmpeg's -t.
    const lengthS = index === count - 1 ? Math.ceil(durationS - startS) : s.chunkS
    chunks.push({ index, startS, lengthS })
  }
  return chunks
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS split_chunks (
    video_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    start_s INTEGER NOT NULL,
    length_s INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    workers TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (video_id, idx)
  );
`

export interface ChunkProgress {
  /** Chunks (video) done and planned; the audio job is apart (`audio`). */
  readonly done: number
  readonly total: number
  /** Every worker that claimed one of the chunks, in the order first seen. */
  readonly workers: readonly string[]
  /** Claims per chunk, by index (1 each when nothing was retried). */
  readonly attempts: readonly number[]
  /** The audio job, or null when none was planned (no audio, or its tracks unknown). */
  readonly audio: { readonly isDone: boolean; readonly attempts: number; readonly workers: readonly string[] } | null
}

interface ChunkRow {
  idx: number
  status: string
  attempts: number
  workers: string
}

export class SplitChunks {
  readonly #sql: Record<'insert' | 'clear' | 'rows' | 'claim' | 'done' | 'row', Statement>

  constructor(db: Db) {
    db.exec(SCHEMA)
    this.#sql = {
      insert: db.prepare(
        `INSERT INTO split_chunks (video_id, idx, start_s, length_s, status) VALUES (?, ?, ?, ?, 'queued')`,
      ),
      clear: db.prepare(`DELETE FROM split_chunks WHERE video_id = ?`),
      rows: db.prepare(`SELECT idx, status, attempts, workers FROM split_chunks WHERE video_id = ? ORDER BY idx`),
      row: db.prepare(`SELECT idx, status, attempts, workers FROM split_chunks WHERE video_id = ? AND idx = ?`),
      claim: db.prepare(`UPDATE split_chunks SET attempts = attempts + 1, workers = ? WHERE video_id = ? AND idx = ?`),
      done: db.prepare(`UPDATE split_chunks SET status = 'done' WHERE video_id = ? AND idx = ?`),
    }
  }

  /** A new plan replaces the video's previous one (a reprocess); with `hasAudioJob` an audio part too. */
  plan(videoId: string, chunks: readonly ChunkSpec[], hasAudioJob: boolean): void {
    this.#sql.clear.run(videoId)
    // The audio covers the whole source: start 0, the length of every chunk together.
    const last = chunks[chunks.length - 1]
    if (hasAudioJob) this.#sql.insert.run(videoId, AUDIO_PART, 0, last === undefined ? 0 : last.startS + last.lengthS)
    for (const c of chunks) this.#sql.insert.run(videoId, c.index, c.startS, c.lengthS)
  }

  deleteOfVideo(videoId: string): void {
    this.#sql.clear.run(videoId)
  }

  /** A worker leased chunk `index` (AUDIO_PART: the audio job). */
  claimed(videoId: string, index: number, workerId: string): void {
    const row = this.#sql.row.get(videoId, index) as ChunkRow | undefined
    if (row === undefined) return
    const workers = JSON.parse(row.workers) as string[]
    if (!workers.includes(workerId)) workers.push(workerId)
    this.#sql.claim.run(JSON.stringify(workers), videoId, index)
  }

  /**
   * Chunk `index` (AUDIO_PART: the audio) is done; true when this made every part of the video done
   * (exactly once).
   */
  completed(videoId: string, index: number): boolean {
    const row = this.#sql.row.get(videoId, index) as ChunkRow | undefined
    if (row === undefined || row.status === 'done') return false
    this.#sql.done.run(videoId, index)
    const p = this.progress(videoId)
    return p !== null && p.done === p.total && (p.audio === null || p.audio.isDone)
  }

  /** The video's chunks and audio job, or null when it is not split. */
  progress(videoId: string): ChunkProgress | null {
    const all = this.#sql.rows.all(videoId) as ChunkRow[]
    const rows = all.filter((r) => r.idx !== AUDIO_PART)
    if (rows.length === 0) return null
    const audio = all.find((r) => r.idx === AUDIO_PART)
    const workers: string[] = []
    for (const r of rows) for (const w of JSON.parse(r.workers) as string[]) if (!workers.includes(w)) workers.push(w)
    return {
      done: rows.filter((r) => r.status === 'done').length,
      total: rows.length,
      workers,
      attempts: rows.map((r) => r.attempts),
      audio:
        audio === undefined
          ? null
          : {
              isDone: audio.status === 'done',
              attempts: audio.attempts,
              workers: JSON.parse(audio.workers) as string[],
            },
    }
  }
}
