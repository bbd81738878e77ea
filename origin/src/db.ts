// The origin's metadata (docs/architecture.md §7.3): videos, renditions, uploads, nodes in one
// SQLite file (WAL), shared with the tables of the modules that own them (jobs: ./job-queue.ts,
// the job outbox: ./job-outbox.ts), which create their own. The one home of better-sqlite3 in the origin: other files get the handle's
// type from here and never import the driver. Schema changes are migrations keyed by PRAGMA
// user_version.
import Database from 'better-sqlite3'

export type Db = Database.Database
export type Statement = Database.Statement

export type VideoStatus = 'uploading' | 'queued' | 'processing' | 'ready' | 'failed'

export interface Rendition {
  name: string
  width: number
  height: number
  bandwidth: number
  averageBandwidth: number | null
  codecs: string
  frameRate: number | null
}

export interface Thumbnails {
  poster: string | null
  sprites: readonly string[]
  vtt: string | null
}

export interface Video {
  id: string
  owner: string
  title: string
  status: VideoStatus
  progress: number
  error: { code: string; message: string } | null
  durationS: number | null
  /** The upload probe found the source's frame rate variable: it is transcoded whole (docs/architecture.md §7.3). */
  isSourceVariableFrameRate: boolean
  /** The source's length and audio stream count by the upload probe; null when it was not probed. */
  sourceDurationS: number | null
  sourceAudioStreams: number | null
  thumbnails: Thumbnails | null
  sourceKey: string | null
  createdAtMs: number
  updatedAtMs: number
  readyAtMs: number | null
}

export interface Upload {
  id: string
  videoId: string
  owner: string
  /** null while deferred (tus creation-defer-length). */
  length: number | null
  offset: number
  /** The raw Upload-Metadata header, echoed on HEAD (tus core §Upload-Metadata). */
  metadata: string
  createdAtMs: number
  expiresAtMs: number
  /** Set once the bytes are in the store as the video's source. */
  completedAtMs: number | null
  sha256: string | null
}

export interface NodeRecord {
  id: string
  tier: string
  adminUrl: string
  registeredAtMs: number
  lastSeenAtMs: number
}

const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE videos (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('uploading','queued','processing','ready','failed')),
    progress REAL NOT NULL DEFAULT 0,
    error_code TEXT,
    error_message TEXT,
    duration_s REAL,
    thumbnails TEXT,
    source_key TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    ready_at INTEGER
  );
  CREATE INDEX videos_owner_created ON videos (owner, created_at DESC, id DESC);
  CREATE INDEX videos_created ON videos (created_at DESC, id DESC);
  CREATE INDEX videos_status ON videos (status);

  CREATE TABLE renditions (
    video_id TEXT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    bandwidth INTEGER NOT NULL,
    average_bandwidth INTEGER,
    codecs TEXT NOT NULL,
    frame_rate REAL,
    PRIMARY KEY (video_id, name)
  );

  CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    video_id TEXT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    owner TEXT NOT NULL,
    length_bytes INTEGER,
    offset_bytes INTEGER NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    completed_at INTEGER,
    sha256 TEXT
  );
  CREATE INDEX uploads_video ON uploads (video_id);
  CREATE INDEX uploads_expires ON uploads (expires_at) WHERE completed_at IS NULL;

  CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    tier TEXT NOT NULL,
    admin_url TEXT NOT NULL,
    registered_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
  );
  `,
  // Purge generations: every purge the origin fans out, in order, so that a node that was away
  // replays what it missed when it registers again (docs/architecture.md §7.4).
  `
  CREATE TABLE purge_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('hard','soft')),
    at INTEGER NOT NULL
  );
  `,
  // Webhook deliveries (docs/architecture.md §7.5): one row per event and endpoint, owned by
  // WebhookDispatcher (./webhooks.ts); kept after the video is deleted.
  `
  CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending','delivered','failed')),
    attempts INTEGER NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    next_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE status = 'pending';
  `,
  // A source whose frame rate varies is never split, by its first transcode or a reprocess
  // (./split-plan.ts sourceSplitProblem).
  `ALTER TABLE videos ADD COLUMN source_vfr INTEGER NOT NULL DEFAULT 0;`,
  // What the upload probe measured of the source (null: not probed), so a reprocess plans as the
  // first transcode did, even of a video that never became ready (./videos.ts reprocess).
  `ALTER TABLE videos ADD COLUMN source_duration_s REAL;
  ALTER TABLE videos ADD COLUMN source_audio_streams INTEGER;`,
]

/** The schema version a migrated database has (PRAGMA user_version). */
export const SCHEMA_VERSION = MIGRATIONS.length

/** One purge of the log: its generation, what it removed or marked, and how. */
export type PurgeTarget = { prefix: string } | { key: string }

export interface PurgeRecord {
  seq: number
  target: PurgeTarget
  mode: 'hard' | 'soft'
}

/** The log keeps this many purges; a node further behind purges everything instead. */
export const PURGE_LOG_KEEP = 10_000

/** Open (creating if needed) and migrate the metadata database. */
export function openDb(file: string): Db {
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  // WAL + NORMAL: a commit is durable once the WAL is synced at checkpoint; a power cut can lose
  // the last transactions but never corrupts the file.
  db.pragma('synchronous = NORMAL')
  db.pragma('foreign_keys = ON')
  db.pragma('busy_timeout = 5000')
  const version = db.pragma('user_version', { simple: true }) as number
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v] as string)
      db.pragma(`user_version = ${v + 1}`)
    })()
  }
  return db
}

interface VideoRow {
  id: string
  owner: string
  title: string
  status: VideoStatus
  progress: number
  error_code: string | null
  error_message: string | null
  duration_s: number | null
  source_vfr: number
  source_duration_s: number | null
  source_audio_streams: number | null
  thumbnails: string | null
  source_key: string | null
  created_at: number
  updated_at: number
  ready_at: number | null
}

interface UploadRow {
  id: string
  video_id: string
  owner: string
  length_bytes: number | null
  offset_bytes: number
  metadata: string
  created_at: number
  expires_at: number
  completed_at: number | null
  sha256: string | null
}

interface RenditionRow {
  name: string
  width: number
  height: number
  bandwidth: number
  average_bandwidth: number | null
  codecs: string
  frame_rate: number | null
}

interface NodeRow {
  id: string
  tier: string
  admin_url: string
  registered_at: number
  last_seen_at: number
}

function toVideo(r: VideoRow): Video {
  return {
    id: r.id,
    owner: r.owner,
    title: r.title,
    status: r.status,
    progress: r.progress,
    error: r.error_code === null ? null : { code: r.error_code, message: r.error_message ?? '' },
    durationS: r.duration_s,
    isSourceVariableFrameRate: r.source_vfr === 1,
    sourceDurationS: r.source_duration_s,
    sourceAudioStreams: r.source_audio_streams,
    thumbnails: r.thumbnails === null ? null : (JSON.parse(r.thumbnails) as Thumbnails),
    sourceKey: r.source_key,
    createdAtMs: r.created_at,
    updatedAtMs: r.updated_at,
    readyAtMs: r.ready_at,
  }
}

function toUpload(r: UploadRow): Upload {
  return {
    id: r.id,
    videoId: r.video_id,
    owner: r.owner,
    length: r.length_bytes,
    offset: r.offset_bytes,
    metadata: r.metadata,
    createdAtMs: r.created_at,
    expiresAtMs: r.expires_at,
    completedAtMs: r.completed_at,
    sha256: r.sha256,
  }
}

/** One prepared statement per listVideos shape (owner filter × cursor), built once. */
function listSql(hasOwner: boolean, hasBefore: boolean): string {
  const where: string[] = []
  if (hasOwner) where.push('owner = @owner')
  if (hasBefore) where.push('(created_at < @beforeMs OR (created_at = @beforeMs AND id < @beforeId))')
  return `SELECT * FROM videos ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY created_at DESC, id DESC LIMIT @limit`
}

/**
 * Typed queries over the metadata tables, every statement prepared once in the constructor. Video
 * status is written here only on behalf of ./videos.ts (VideoLifecycle), which checks each
 * transition and owns its transaction. The job queue and the outbox share the same handle (same
 * file, same transactions) through `db`.
 */
export class MetadataDb {
  readonly db: Db
  readonly #sql

  constructor(db: Db) {
    this.db = db
    const p = (sql: string): Statement => db.prepare(sql)
    this.#sql = {
      createVideo: p(
        `INSERT INTO videos (id, owner, title, status, created_at, updated_at) VALUES (?, ?, ?, 'uploading', ?, ?)`,
      ),
      getVideo: p(`SELECT * FROM videos WHERE id = ?`),
      list: [p(listSql(false, false)), p(listSql(false, true)), p(listSql(true, false)), p(listSql(true, true))],
      setTitle: p(`UPDATE videos SET title = ?, updated_at = ? WHERE id = ?`),
      setSourceProbe: p(
        `UPDATE videos SET source_vfr = ?, source_duration_s = ?, source_audio_streams = ? WHERE id = ?`,
      ),
      // One statement for every shape of setStatus: a flag per optional field keeps the column.
      setStatus: p(
        `UPDATE videos SET status = @status, updated_at = @now,
           progress = CASE WHEN @hasProgress THEN @progress ELSE progress END,
           error_code = CASE WHEN @hasError THEN @errorCode ELSE error_code END,
           error_message = CASE WHEN @hasError THEN @errorMessage ELSE error_message END,
           source_key = CASE WHEN @hasSourceKey THEN @sourceKey ELSE source_key END
         WHERE id = @id`,
      ),
      setProgress: p(`UPDATE videos SET progress = ?, updated_at = ? WHERE id = ?`),
      deleteRenditions: p(`DELETE FROM renditions WHERE video_id = ?`),
      insertRendition: p(
        `INSERT INTO renditions (video_id, name, width, height, bandwidth, average_bandwidth, codecs, frame_rate)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      markReady: p(
        `UPDATE videos SET status = 'ready', progress = 1, error_code = NULL, error_message = NULL, duration_s = ?,
         thumbnails = ?, updated_at = ?, ready_at = ? WHERE id = ?`,
      ),
      renditions: p(`SELECT * FROM renditions WHERE video_id = ? ORDER BY bandwidth`),
      deleteVideo: p(`DELETE FROM videos WHERE id = ?`),
      createUpload: p(
        `INSERT INTO uploads (id, video_id, owner, length_bytes, metadata, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      getUpload: p(`SELECT * FROM uploads WHERE id = ?`),
      uploadsOfVideo: p(`SELECT * FROM uploads WHERE video_id = ?`),
      setUploadProgress: p(`UPDATE uploads SET offset_bytes = ?, expires_at = ? WHERE id = ?`),
      setUploadLength: p(`UPDATE uploads SET length_bytes = ? WHERE id = ?`),
      markUploadCompleted: p(`UPDATE uploads SET completed_at = ?, sha256 = ? WHERE id = ?`),
      deleteUpload: p(`DELETE FROM uploads WHERE id = ?`),
      expiredUploads: p(
        `SELECT * FROM uploads WHERE completed_at IS NULL AND expires_at <= ?
         AND (length_bytes IS NULL OR offset_bytes < length_bytes)`,
      ),
      unfinalizedUploads: p(
        `SELECT * FROM uploads WHERE completed_at IS NULL AND length_bytes IS NOT NULL AND offset_bytes = length_bytes`,
      ),
      upsertNode: p(
        `INSERT INTO nodes (id, tier, admin_url, registered_at, last_seen_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET tier = excluded.tier, admin_url = excluded.admin_url, last_seen_at = excluded.last_seen_at`,
      ),
      listNodes: p(`SELECT * FROM nodes ORDER BY id`),
      appendPurge: p(`INSERT INTO purge_log (target, mode, at) VALUES (?, ?, ?)`),
      prunePurges: p(`DELETE FROM purge_log WHERE seq <= ?`),
      purgesSince: p(`SELECT seq, target, mode FROM purge_log WHERE seq > ? ORDER BY seq LIMIT ?`),
      purgeBounds: p(`SELECT MIN(seq) AS first, MAX(seq) AS last FROM purge_log`),
      purgeSeq: p(`SELECT seq FROM sqlite_sequence WHERE name = 'purge_log'`),
    }
  }

  close(): void {
    this.db.close()
  }

  // ---- videos -------------------------------------------------------------------------------

  createVideo(v: { id: string; owner: string; title: string; nowMs: number }): Video {
    this.#sql.createVideo.run(v.id, v.owner, v.title, v.nowMs, v.nowMs)
    return this.getVideo(v.id) as Video
  }

  getVideo(id: string): Video | null {
    const row = this.#sql.getVideo.get(id) as VideoRow | undefined
    return row === undefined ? null : toVideo(row)
  }

  /** Newest first; `before` is the (createdAtMs, id) of the last row of the previous page. */
  listVideos(q: { owner: string | null; limit: number; before: { createdAtMs: number; id: string } | null }): Video[] {
    const stmt = this.#sql.list[(q.owner !== null ? 2 : 0) + (q.before !== null ? 1 : 0)] as Statement
    const args: Record<string, string | number> = { limit: q.limit }
    if (q.owner !== null) args['owner'] = q.owner
    if (q.before !== null) {
      args['beforeMs'] = q.before.createdAtMs
      args['beforeId'] = q.before.id
    }
    return (stmt.all(args) as VideoRow[]).map(toVideo)
  }

  setTitle(id: string, title: string, nowMs: number): void {
    this.#sql.setTitle.run(title, nowMs, id)
  }

  /** What the upload probe found of the source (null: not probed). Called by VideoLifecycle only. */
  setSourceProbe(
    id: string,
    probe: { isVariableFrameRate: boolean; durationS: number | null; audioStreams: number | null },
  ): void {
    this.#sql.setSourceProbe.run(probe.isVariableFrameRate ? 1 : 0, probe.durationS, probe.audioStreams, id)
  }

  /** The status column and what changes with it. Called by VideoLifecycle (./videos.ts) only. */
  setStatus(
    id: string,
    status: VideoStatus,
    nowMs: number,
    extra: { progress?: number; error?: { code: string; message: string } | null; sourceKey?: string } = {},
  ): void {
    this.#sql.setStatus.run({
      id,
      status,
      now: nowMs,
      hasProgress: extra.progress !== undefined ? 1 : 0,
      progress: extra.progress ?? null,
      hasError: extra.error !== undefined ? 1 : 0,
      errorCode: extra.error?.code ?? null,
      errorMessage: extra.error?.message ?? null,
      hasSourceKey: extra.sourceKey !== undefined ? 1 : 0,
      sourceKey: extra.sourceKey ?? null,
    })
  }

  setProgress(id: string, progress: number, nowMs: number): void {
    this.#sql.setProgress.run(progress, nowMs, id)
  }

  /** Renditions replaced and the video marked ready in one transaction. Called by VideoLifecycle only. */
  markReady(
    id: string,
    r: { durationS: number | null; renditions: readonly Rendition[]; thumbnails: Thumbnails | null },
    nowMs: number,
  ): void {
    const { deleteRenditions, insertRendition, markReady } = this.#sql
    this.db.transaction(() => {
      deleteRenditions.run(id)
      for (const x of r.renditions) {
        insertRendition.run(id, x.name, x.width, x.height, x.bandwidth, x.averageBandwidth, x.codecs, x.frameRate)
      }
      markReady.run(r.durationS, r.thumbnails === null ? null : JSON.stringify(r.thumbnails), nowMs, nowMs, id)
    })()
  }

  renditions(videoId: string): Rendition[] {
    const rows = this.#sql.renditions.all(videoId) as RenditionRow[]
    return rows.map((r) => ({
      name: r.name,
      width: r.width,
      height: r.height,
      bandwidth: r.bandwidth,
      averageBandwidth: r.average_bandwidth,
      codecs: r.codecs,
      frameRate: r.frame_rate,
    }))
  }

  /** Deletes the video with its renditions and uploads (cascade). Called by VideoLifecycle only. */
  deleteVideo(id: string): void {
    this.#sql.deleteVideo.run(id)
  }

  // ---- uploads ------------------------------------------------------------------------------

  createUpload(u: {
    id: string
    videoId: string
    owner: string
    length: number | null
    metadata: string
    nowMs: number
    expiresAtMs: number
  }): Upload {
    this.#sql.createUpload.run(u.id, u.videoId, u.owner, u.length, u.metadata, u.nowMs, u.expiresAtMs)
    return this.getUpload(u.id) as Upload
  }

  getUpload(id: string): Upload | null {
    const row = this.#sql.getUpload.get(id) as UploadRow | undefined
    return row === undefined ? null : toUpload(row)
  }

  uploadsOfVideo(videoId: string): Upload[] {
    return (this.#sql.uploadsOfVideo.all(videoId) as UploadRow[]).map(toUpload)
  }

  /**
   * A PATCH's bytes acknowledged, in one transaction: the offset and expiry, the length when the
   * PATCH declared it (tus creation-defer-length), and the video's upload progress.
   */
  recordUploadProgress(u: {
    id: string
    videoId: string
    offset: number
    expiresAtMs: number
    declaredLength: number | null
    videoProgress: number | null
    nowMs: number
  }): void {
    this.db.transaction(() => {
      if (u.declaredLength !== null) this.#sql.setUploadLength.run(u.declaredLength, u.id)
      this.#sql.setUploadProgress.run(u.offset, u.expiresAtMs, u.id)
      if (u.videoProgress !== null) this.#sql.setProgress.run(u.videoProgress, u.nowMs, u.videoId)
    })()
  }

  markUploadCompleted(id: string, sha256: string, nowMs: number): void {
    this.#sql.markUploadCompleted.run(nowMs, sha256, id)
  }

  deleteUpload(id: string): void {
    this.#sql.deleteUpload.run(id)
  }

  /** Unfinished uploads whose expiry has passed (abandoned). */
  expiredUploads(nowMs: number): Upload[] {
    return (this.#sql.expiredUploads.all(nowMs) as UploadRow[]).map(toUpload)
  }

  /** Uploads that received every byte but were not moved into the store (a crash in between). */
  unfinalizedUploads(): Upload[] {
    return (this.#sql.unfinalizedUploads.all() as UploadRow[]).map(toUpload)
  }

  // ---- nodes --------------------------------------------------------------------------------

  upsertNode(n: { id: string; tier: string; adminUrl: string; nowMs: number }): void {
    this.#sql.upsertNode.run(n.id, n.tier, n.adminUrl, n.nowMs, n.nowMs)
  }

  // ---- purge generations ----------------------------------------------------------------------

  /** Record a purge; returns its generation. The log keeps the last PURGE_LOG_KEEP. */
  appendPurge(target: PurgeRecord['target'], mode: PurgeRecord['mode'], nowMs: number): number {
    const seq = Number(this.#sql.appendPurge.run(JSON.stringify(target), mode, nowMs).lastInsertRowid)
    if (seq > PURGE_LOG_KEEP) this.#sql.prunePurges.run(seq - PURGE_LOG_KEEP)
    return seq
  }

  /** The newest generation (0 before the first purge). */
  purgeSeq(): number {
    const row = this.#sql.purgeSeq.get() as { seq: number } | undefined
    return row?.seq ?? 0
  }

  /**
   * The purges after generation `seq`, at most `limit`; `isComplete` is false when some between
   * `seq` and now are no longer in the log (the caller then has to purge everything).
   */
  purgesSince(seq: number, limit: number): { purges: PurgeRecord[]; isComplete: boolean } {
    const bounds = this.#sql.purgeBounds.get() as { first: number | null; last: number | null }
    const last = this.purgeSeq()
    if (seq >= last) return { purges: [], isComplete: true }
    const first = bounds.first ?? last + 1
    const rows = this.#sql.purgesSince.all(seq, limit) as { seq: number; target: string; mode: 'hard' | 'soft' }[]
    const purges = rows.map((r) => ({
      seq: r.seq,
      target: JSON.parse(r.target) as PurgeRecord['target'],
      mode: r.mode,
    }))
    return { purges, isComplete: seq + 1 >= first && purges.length === last - seq }
  }

  listNodes(): NodeRecord[] {
    return (this.#sql.listNodes.all() as NodeRow[]).map((r) => ({
      id: r.id,
      tier: r.tier,
      adminUrl: r.admin_url,
      registeredAtMs: r.registered_at,
      lastSeenAtMs: r.last_seen_at,
    }))
  }
}
