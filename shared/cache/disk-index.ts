// The disk tier's index: the one home of better-sqlite3 (docs/style.md "Layout"). The index is the
// truth about what is cached; bodies live in files under objects/, never in SQLite.
// Owned by one CacheEngine; all calls are synchronous and run on the event-loop thread.

import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs'
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
  /** 1 while a prefetched object has not been hit yet (eviction and purge count it as wasted). */
  prefetched?: number
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

/** What the index reports to its owner about damage (the engine counts and logs it). */
export interface DiskIndexHooks {
  /** Epoch ms, for the name of the moved-aside files. */
  now: () => number
  /** At open: the index was damaged, moved aside (`aside`: the new paths) and replaced by an empty one. */
  onRebuild: (err: unknown, aside: readonly string[]) => void
  /** At run time: a query found the index damaged; the operation was treated as a miss / skipped. */
  onCorrupt: (err: unknown) => void
}

// SQLite's result codes for "this file is not a sound database" (https://sqlite.org/rescode.html):
// SQLITE_CORRUPT and its extended codes (SQLITE_CORRUPT_INDEX, …) and SQLITE_NOTADB (bad header).
// Anything else (I/O errors, a full disk, permissions) is not repaired by moving the file aside.
const CORRUPTION_CODE = /^SQLITE_(CORRUPT|NOTADB)/

/** True for better-sqlite3 errors that mean the index file is damaged. */
export function isCorruption(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && CORRUPTION_CODE.test(code)
}

/** Set when a query hit damage at run time: the next open rebuilds even if quick_check passes. */
const DAMAGED_SUFFIX = '.damaged'
const FILE_SUFFIXES = ['', '-wal', '-shm'] as const

/**
 * Open the database, set it up and check it. `PRAGMA quick_check` walks every b-tree page
 * (O(pages), without the index-vs-table cross-check of integrity_check), so damage anywhere in
 * the file is found here instead of by a request later. Closes the handle on failure.
 */
function openChecked(path: string): Database.Database {
  const db = new Database(path)
  try {
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    db.exec(SCHEMA)
    const result = db.pragma('quick_check(1)', { simple: true })
    if (result !== 'ok') {
      throw Object.assign(new Error(`index quick_check: ${String(result)}`), { code: 'SQLITE_CORRUPT' })
    }
    return db
  } catch (err) {
    db.close()
    throw err
  }
}

export class DiskIndex {
  readonly #db: Database.Database
  readonly #path: string
  readonly #onCorrupt: (err: unknown) => void
  #isMarkedDamaged = false
  readonly #get: Database.Statement<[string], IndexRow>
  readonly #getRef: Database.Statement<[string], FileRef>
  readonly #upsert: Database.Statement<[IndexRow]>
  readonly #delete: Database.Statement<[string]>
  readonly #touch: Database.Statement<[number, string]>
  readonly #refresh: Database.Statement<[string, number, number, string | null, string | null, string]>
  readonly #clearPrefetched: Database.Statement<[string]>
  readonly #oldest: Database.Statement<[number], FileRef>
  readonly #range: Database.Statement<[string, string], FileRef>
  readonly #firstInRange: Database.Statement<[string, string], IndexRow>
  readonly #deleteRange: Database.Statement<[string, string]>
  readonly #expireRange: Database.Statement<[number, string, string], { key: string }>
  readonly #expireKey: Database.Statement<[number, string], { key: string }>
  readonly #all: Database.Statement<[], FileRef>
  readonly #touchMany: (entries: readonly (readonly [string, number])[]) => void
  readonly #deleteMany: (keys: readonly string[]) => void
  readonly #replace: (row: IndexRow) => FileRef | undefined

  /**
   * Open the index at `path`. A damaged one (corruption-class error while opening, setting up or
   * checking it, or a damage mark left at run time) is moved aside as `<path>.corrupt-<epoch ms>`
   * (with its -wal and -shm), reported through hooks.onRebuild, and replaced by an empty index.
   * The object files carry no key or headers, so nothing can be rebuilt from them: the disk tier
   * starts empty and the engine's reconciliation removes the orphaned files.
   */
  static open(path: string, hooks: DiskIndexHooks): DiskIndex {
    const mark = path + DAMAGED_SUFFIX
    try {
      if (existsSync(mark)) {
        throw Object.assign(new Error('index was marked damaged at run time'), { code: 'SQLITE_CORRUPT' })
      }
      return new DiskIndex(path, hooks.onCorrupt)
    } catch (err) {
      if (!isCorruption(err)) throw err
      const epoch = hooks.now()
      const aside: string[] = []
      for (const suffix of FILE_SUFFIXES) {
        if (!existsSync(path + suffix)) continue
        const to = `${path}.corrupt-${epoch}${suffix}`
        renameSync(path + suffix, to)
        aside.push(to)
      }
      rmSync(mark, { force: true })
      hooks.onRebuild(err, aside)
      return new DiskIndex(path, hooks.onCorrupt)
    }
  }

  private constructor(path: string, onCorrupt: (err: unknown) => void) {
    this.#path = path
    this.#onCorrupt = onCorrupt
    this.#db = openChecked(path)
    this.#get = this.#db.prepare('SELECT * FROM objects WHERE key = ?')
    this.#getRef = this.#db.prepare('SELECT key, file, size, prefetched FROM objects WHERE key = ?')
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
    this.#oldest = this.#db.prepare('SELECT key, file, size, prefetched FROM objects ORDER BY last_access ASC LIMIT ?')
    // A range on the primary key, not a LIKE scan: prefix purge stays O(log n + matches).
    this.#range = this.#db.prepare('SELECT key, file, size, prefetched FROM objects WHERE key >= ? AND key < ?')
    this.#firstInRange = this.#db.prepare('SELECT * FROM objects WHERE key >= ? AND key < ? LIMIT 1')
    this.#deleteRange = this.#db.prepare('DELETE FROM objects WHERE key >= ? AND key < ?')
    this.#expireRange = this.#db.prepare(
      'UPDATE objects SET expires_at = MIN(expires_at, ?) WHERE key >= ? AND key < ? RETURNING key',
    )
    this.#expireKey = this.#db.prepare('UPDATE objects SET expires_at = MIN(expires_at, ?) WHERE key = ? RETURNING key')
    this.#all = this.#db.prepare('SELECT key, file, size FROM objects')
    this.#touchMany = this.#db.transaction((entries: readonly (readonly [string, number])[]) => {
      for (const [key, lastAccess] of entries) this.#touch.run(lastAccess, key)
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

  // Run-time damage (a query throwing SQLITE_CORRUPT/NOTADB after a clean open) must not end the
  // process: a read is answered as "not stored" (the request becomes a miss and goes upstream), a
  // bookkeeping write is skipped, and put() still throws so nothing is counted as stored. Each is
  // reported through onCorrupt, and a mark file makes the next open rebuild the index.

  get(key: string): IndexRow | undefined {
    return this.#read(undefined, () => this.#get.get(key))
  }

  getRef(key: string): FileRef | undefined {
    return this.#read(undefined, () => this.#getRef.get(key))
  }

  /** Insert or replace; returns the replaced row's file so the caller can unlink it. */
  put(row: IndexRow): FileRef | undefined {
    try {
      return this.#replace(row)
    } catch (err) {
      if (isCorruption(err)) this.#damaged(err)
      throw err
    }
  }

  delete(key: string): void {
    this.#write(() => this.#delete.run(key))
  }

  deleteMany(keys: readonly string[]): void {
    if (keys.length > 0) this.#write(() => this.#deleteMany(keys))
  }

  touchMany(entries: readonly (readonly [string, number])[]): void {
    if (entries.length > 0) this.#write(() => this.#touchMany(entries))
  }

  refresh(
    key: string,
    headers: string,
    storedAt: number,
    expiresAt: number,
    etag: string | undefined,
    lastModified: string | undefined,
  ): void {
    this.#write(() => this.#refresh.run(headers, storedAt, expiresAt, etag ?? null, lastModified ?? null, key))
  }

  clearPrefetched(key: string): void {
    this.#write(() => this.#clearPrefetched.run(key))
  }

  oldest(limit: number): FileRef[] {
    return this.#read([], () => this.#oldest.all(limit))
  }

  /** Rows whose key starts with prefix, as a primary-key range [prefix, prefix⁺). */
  prefix(prefix: string): FileRef[] {
    const [lo, hi] = prefixBounds(prefix)
    return this.#read([], () => this.#range.all(lo, hi))
  }

  /** One row whose key starts with prefix (the first in key order), or undefined. */
  firstWithPrefix(prefix: string): IndexRow | undefined {
    const [lo, hi] = prefixBounds(prefix)
    return this.#read(undefined, () => this.#firstInRange.get(lo, hi))
  }

  deletePrefix(prefix: string): void {
    const [lo, hi] = prefixBounds(prefix)
    this.#write(() => this.#deleteRange.run(lo, hi))
  }

  /** Soft purge: rows whose key starts with prefix expire at `at` (if later); returns their keys. */
  expirePrefix(prefix: string, at: number): string[] {
    const [lo, hi] = prefixBounds(prefix)
    return this.#read([], () => this.#expireRange.all(at, lo, hi).map((r) => r.key))
  }

  /** Soft purge of one key: it expires at `at` (if later); returns whether the row exists. */
  expireKey(key: string, at: number): boolean {
    return this.#read(false, () => this.#expireKey.all(at, key).length > 0)
  }

  all(): FileRef[] {
    return this.#read([], () => this.#all.all())
  }

  #read<T>(onDamage: T, query: () => T): T {
    try {
      return query()
    } catch (err) {
      if (!isCorruption(err)) throw err
      this.#damaged(err)
      return onDamage
    }
  }

  #write(statement: () => unknown): void {
    try {
      statement()
    } catch (err) {
      if (!isCorruption(err)) throw err
      this.#damaged(err)
    }
  }

  #damaged(err: unknown): void {
    if (!this.#isMarkedDamaged) {
      this.#isMarkedDamaged = true
      try {
        writeFileSync(this.#path + DAMAGED_SUFFIX, '')
      } catch {
        // The mark is a hint for the next start; quick_check there is the other line of defence.
      }
    }
    this.#onCorrupt(err)
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
