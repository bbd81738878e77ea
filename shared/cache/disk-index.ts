// The disk tier's index: the one home of better-sqlite3 (STYLE.md "Layout"). The index is the
// truth about what is cached; bodies live in files under objects/, never in SQLite.
// Owned by one CacheEngine; all calls are synchronous and run on the event-loop thread.

import Database from 'better-sqlite3'

export interface IndexRow {
  key: string
  file: string
  size: number
  status: number
  headers: string
  stored_at: number
  expires_at: number
  last_access: number
  etag: string | null
  last_modified: string | null
  prefetched: number
}

export interface FileRef {
  key: string
  file: string
  size: number
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS objects (
  key           TEXT PRIMARY KEY,
  file          TEXT NOT NULL,
  size          INTEGER NOT NULL,
  status        INTEGER NOT NULL,
  headers       TEXT NOT NULL,
  stored_at     INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL,
  last_access   INTEGER NOT NULL,
  etag          TEXT,
  last_modified TEXT,
  prefetched    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_last_access ON objects(last_access);
`

export class DiskIndex {
  readonly #db: Database.Database
  readonly #get: Database.Statement<[string], IndexRow>
  readonly #getRef: Database.Statement<[string], FileRef>
  readonly #upsert: Database.Statement<[IndexRow]>
  readonly #delete: Database.Statement<[string]>
  readonly #touch: Database.Statement<[number, string]>
  readonly #refresh: Database.Statement<[string, number, number, string | null, string | null, string]>
  readonly #clearPrefetched: Database.Statement<[string]>
  readonly #oldest: Database.Statement<[number], FileRef>
  readonly #range: Database.Statement<[string, string], FileRef>
  readonly #deleteRange: Database.Statement<[string, string]>
  readonly #all: Database.Statement<[], FileRef>
  readonly #touchMany: (keys: readonly string[], now: number) => void
  readonly #deleteMany: (keys: readonly string[]) => void
  readonly #replace: (row: IndexRow) => FileRef | undefined

  constructor(path: string) {
    this.#db = new Database(path)
    this.#db.pragma('journal_mode = WAL')
    this.#db.pragma('synchronous = NORMAL')
    this.#db.exec(SCHEMA)
    this.#get = this.#db.prepare('SELECT * FROM objects WHERE key = ?')
    this.#getRef = this.#db.prepare('SELECT key, file, size FROM objects WHERE key = ?')
    this.#upsert = this.#db.prepare(
      `INSERT OR REPLACE INTO objects (key, file, size, status, headers, stored_at, expires_at, last_access, etag, last_modified, prefetched)
       VALUES (@key, @file, @size, @status, @headers, @stored_at, @expires_at, @last_access, @etag, @last_modified, @prefetched)`,
    )
    this.#delete = this.#db.prepare('DELETE FROM objects WHERE key = ?')
    this.#touch = this.#db.prepare('UPDATE objects SET last_access = ? WHERE key = ?')
    this.#refresh = this.#db.prepare(
      'UPDATE objects SET headers = ?, stored_at = ?, expires_at = ?, etag = ?, last_modified = ? WHERE key = ?',
    )
    this.#clearPrefetched = this.#db.prepare('UPDATE objects SET prefetched = 0 WHERE key = ?')
    this.#oldest = this.#db.prepare('SELECT key, file, size FROM objects ORDER BY last_access ASC LIMIT ?')
    // A range on the primary key, not a LIKE scan: prefix purge stays O(log n + matches).
    this.#range = this.#db.prepare('SELECT key, file, size FROM objects WHERE key >= ? AND key < ?')
    this.#deleteRange = this.#db.prepare('DELETE FROM objects WHERE key >= ? AND key < ?')
    this.#all = this.#db.prepare('SELECT key, file, size FROM objects')
    this.#touchMany = this.#db.transaction((keys: readonly string[], now: number) => {
      for (const key of keys) this.#touch.run(now, key)
    })
    this.#deleteMany = this.#db.transaction((keys: readonly string[]) => {
      for (const key of keys) this.#delete.run(key)
    })
    this.#replace = this.#db.transaction((row: IndexRow) => {
      const previous = this.#getRef.get(row.key)
      this.#upsert.run(row)
      return previous
    })
  }

  get(key: string): IndexRow | undefined {
    return this.#get.get(key)
  }

  getRef(key: string): FileRef | undefined {
    return this.#getRef.get(key)
  }

  /** Insert or replace; returns the replaced row's file so the caller can unlink it. */
  put(row: IndexRow): FileRef | undefined {
    return this.#replace(row)
  }

  delete(key: string): void {
    this.#delete.run(key)
  }

  deleteMany(keys: readonly string[]): void {
    if (keys.length > 0) this.#deleteMany(keys)
  }

  touchMany(keys: readonly string[], now: number): void {
    if (keys.length > 0) this.#touchMany(keys, now)
  }

  refresh(
    key: string,
    headers: string,
    storedAt: number,
    expiresAt: number,
    etag: string | undefined,
    lastModified: string | undefined,
  ): void {
    this.#refresh.run(headers, storedAt, expiresAt, etag ?? null, lastModified ?? null, key)
  }

  clearPrefetched(key: string): void {
    this.#clearPrefetched.run(key)
  }

  oldest(limit: number): FileRef[] {
    return this.#oldest.all(limit)
  }

  /** Rows whose key starts with prefix, as a primary-key range [prefix, prefix⁺). */
  prefix(prefix: string): FileRef[] {
    const [lo, hi] = prefixBounds(prefix)
    return this.#range.all(lo, hi)
  }

  deletePrefix(prefix: string): void {
    const [lo, hi] = prefixBounds(prefix)
    this.#deleteRange.run(lo, hi)
  }

  all(): FileRef[] {
    return this.#all.all()
  }

  close(): void {
    this.#db.close()
  }
}

/**
 * Keys are printable ASCII (normalizeKey), so the smallest string greater than every key with
 * this prefix is the prefix with its last character incremented. The empty prefix matches all.
 */
export function prefixBounds(prefix: string): [string, string] {
  if (prefix.length === 0) return ['', '\u{10ffff}']
  const last = prefix.charCodeAt(prefix.length - 1)
  return [prefix, prefix.slice(0, -1) + String.fromCharCode(last + 1)]
}
