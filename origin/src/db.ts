// The origin's metadata (docs/architecture.md §7.3): videos, renditions, uploads, jobs, nodes in
// one SQLite file (WAL). The one home of better-sqlite3 in the origin: other files get the handle's
// type from here and never import the driver. Schema changes are migrations keyed by PRAGMA
// user_version.
import Database from 'better-sqlite3'

export type Db = Database.Database

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
  sprites: string[]
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

  CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    video_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued','leased','done','failed')),
    attempt INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_after INTEGER NOT NULL,
    lease_until INTEGER,
    worker_id TEXT,
    heartbeat_at INTEGER,
    progress REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    result TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX jobs_runnable ON jobs (status, run_after);
  CREATE INDEX jobs_lease ON jobs (status, lease_until);
  CREATE INDEX jobs_video ON jobs (video_id);

  CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    tier TEXT NOT NULL,
    admin_url TEXT NOT NULL,
    registered_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
  );
  `,
]

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

/**
 * Typed queries over the metadata tables. Owns the handle's statements; the job queue shares the
 * same handle (same file, same transactions) through `db`.
 */
export class MetadataDb {
  readonly db: Db

  constructor(db: Db) {
    this.db = db
  }

  close(): void {
    this.db.close()
  }

  // ---- videos -------------------------------------------------------------------------------

  createVideo(v: { id: string; owner: string; title: string; nowMs: number }): Video {
    this.db
      .prepare(
        `INSERT INTO videos (id, owner, title, status, created_at, updated_at) VALUES (?, ?, ?, 'uploading', ?, ?)`,
      )
      .run(v.id, v.owner, v.title, v.nowMs, v.nowMs)
    return this.getVideo(v.id) as Video
  }

  getVideo(id: string): Video | null {
    const row = this.db.prepare(`SELECT * FROM videos WHERE id = ?`).get(id) as VideoRow | undefined
    return row === undefined ? null : toVideo(row)
  }

  /** Newest first; `before` is the (createdAtMs, id) of the last row of the previous page. */
  listVideos(q: { owner: string | null; limit: number; before: { createdAtMs: number; id: string } | null }): Video[] {
    const where: string[] = []
    const args: (string | number)[] = []
    if (q.owner !== null) {
      where.push('owner = ?')
      args.push(q.owner)
    }
    if (q.before !== null) {
      where.push('(created_at < ? OR (created_at = ? AND id < ?))')
      args.push(q.before.createdAtMs, q.before.createdAtMs, q.before.id)
    }
    const sql = `SELECT * FROM videos ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY created_at DESC, id DESC LIMIT ?`
    return (this.db.prepare(sql).all(...args, q.limit) as VideoRow[]).map(toVideo)
  }

  setTitle(id: string, title: string, nowMs: number): void {
    this.db.prepare(`UPDATE videos SET title = ?, updated_at = ? WHERE id = ?`).run(title, nowMs, id)
  }

  setStatus(
    id: string,
    status: VideoStatus,
    nowMs: number,
    extra: { progress?: number; error?: { code: string; message: string } | null; sourceKey?: string } = {},
  ): void {
    const sets = ['status = @status', 'updated_at = @now']
    const args: Record<string, unknown> = { id, status, now: nowMs }
    if (extra.progress !== undefined) {
      sets.push('progress = @progress')
      args['progress'] = extra.progress
    }
    if (extra.error !== undefined) {
      sets.push('error_code = @errorCode', 'error_message = @errorMessage')
      args['errorCode'] = extra.error?.code ?? null
      args['errorMessage'] = extra.error?.message ?? null
    }
    if (extra.sourceKey !== undefined) {
      sets.push('source_key = @sourceKey')
      args['sourceKey'] = extra.sourceKey
    }
    this.db.prepare(`UPDATE videos SET ${sets.join(', ')} WHERE id = @id`).run(args)
  }

  setProgress(id: string, progress: number, nowMs: number): void {
    this.db.prepare(`UPDATE videos SET progress = ?, updated_at = ? WHERE id = ?`).run(progress, nowMs, id)
  }

  /** Renditions replaced and the video marked ready in one transaction. */
  markReady(
    id: string,
    r: { durationS: number | null; renditions: Rendition[]; thumbnails: Thumbnails | null },
    nowMs: number,
  ): void {
    const del = this.db.prepare(`DELETE FROM renditions WHERE video_id = ?`)
    const ins = this.db.prepare(
      `INSERT INTO renditions (video_id, name, width, height, bandwidth, average_bandwidth, codecs, frame_rate)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    const upd = this.db.prepare(
      `UPDATE videos SET status = 'ready', progress = 1, error_code = NULL, error_message = NULL, duration_s = ?,
       thumbnails = ?, updated_at = ?, ready_at = ? WHERE id = ?`,
    )
    this.db.transaction(() => {
      del.run(id)
      for (const x of r.renditions) {
        ins.run(id, x.name, x.width, x.height, x.bandwidth, x.averageBandwidth, x.codecs, x.frameRate)
      }
      upd.run(r.durationS, r.thumbnails === null ? null : JSON.stringify(r.thumbnails), nowMs, nowMs, id)
    })()
  }

  renditions(videoId: string): Rendition[] {
    const rows = this.db
      .prepare(`SELECT * FROM renditions WHERE video_id = ? ORDER BY bandwidth`)
      .all(videoId) as RenditionRow[]
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

  /** Deletes the video with its renditions and uploads (cascade) and its jobs. */
  deleteVideo(id: string): void {
    this.db.transaction(() => {
      this.db.prepare(`DELETE FROM jobs WHERE video_id = ?`).run(id)
      this.db.prepare(`DELETE FROM videos WHERE id = ?`).run(id)
    })()
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
    this.db
      .prepare(
        `INSERT INTO uploads (id, video_id, owner, length_bytes, metadata, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(u.id, u.videoId, u.owner, u.length, u.metadata, u.nowMs, u.expiresAtMs)
    return this.getUpload(u.id) as Upload
  }

  getUpload(id: string): Upload | null {
    const row = this.db.prepare(`SELECT * FROM uploads WHERE id = ?`).get(id) as UploadRow | undefined
    return row === undefined ? null : toUpload(row)
  }

  uploadsOfVideo(videoId: string): Upload[] {
    return (this.db.prepare(`SELECT * FROM uploads WHERE video_id = ?`).all(videoId) as UploadRow[]).map(toUpload)
  }

  setUploadProgress(id: string, offset: number, expiresAtMs: number): void {
    this.db.prepare(`UPDATE uploads SET offset_bytes = ?, expires_at = ? WHERE id = ?`).run(offset, expiresAtMs, id)
  }

  setUploadLength(id: string, length: number): void {
    this.db.prepare(`UPDATE uploads SET length_bytes = ? WHERE id = ?`).run(length, id)
  }

  markUploadCompleted(id: string, sha256: string, nowMs: number): void {
    this.db.prepare(`UPDATE uploads SET completed_at = ?, sha256 = ? WHERE id = ?`).run(nowMs, sha256, id)
  }

  deleteUpload(id: string): void {
    this.db.prepare(`DELETE FROM uploads WHERE id = ?`).run(id)
  }

  /** Unfinished uploads whose expiry has passed (abandoned). */
  expiredUploads(nowMs: number): Upload[] {
    return (
      this.db
        .prepare(
          `SELECT * FROM uploads WHERE completed_at IS NULL AND expires_at <= ?
           AND (length_bytes IS NULL OR offset_bytes < length_bytes)`,
        )
        .all(nowMs) as UploadRow[]
    ).map(toUpload)
  }

  /** Uploads that received every byte but were not moved into the store (a crash in between). */
  unfinalizedUploads(): Upload[] {
    return (
      this.db
        .prepare(
          `SELECT * FROM uploads WHERE completed_at IS NULL AND length_bytes IS NOT NULL AND offset_bytes = length_bytes`,
        )
        .all() as UploadRow[]
    ).map(toUpload)
  }

  // ---- nodes --------------------------------------------------------------------------------

  upsertNode(n: { id: string; tier: string; adminUrl: string; nowMs: number }): void {
    this.db
      .prepare(
        `INSERT INTO nodes (id, tier, admin_url, registered_at, last_seen_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET tier = excluded.tier, admin_url = excluded.admin_url, last_seen_at = excluded.last_seen_at`,
      )
      .run(n.id, n.tier, n.adminUrl, n.nowMs, n.nowMs)
  }

  listNodes(): NodeRecord[] {
    return (this.db.prepare(`SELECT * FROM nodes ORDER BY id`).all() as NodeRow[]).map((r) => ({
      id: r.id,
      tier: r.tier,
      adminUrl: r.admin_url,
      registeredAtMs: r.registered_at,
      lastSeenAtMs: r.last_seen_at,
    }))
  }
}
