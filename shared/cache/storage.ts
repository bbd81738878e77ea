// Storage of the cache engine (docs/architecture.md §5), the role of undici's SqliteCacheStore and
// Varnish's stevedore: the memory tier, the disk index, the object files, the storage counters,
// LRU eviction between watermarks and crash recovery at open. It knows nothing of requests: the
// engine looks up and delivers, a fill's fetch (fetch.ts) writes its temp file and hands the
// finished file over here.
//
// Ownership of shared mutable state: the store alone mutates the memory tier, the index, the files
// under objects/, the remembered Vary lists and the storage counters (diskBytes, objects,
// evictions, evictedBytes, purged, indexRebuilds, indexErrors); the engine and fetch.ts own the
// other counters of the one CacheCounters object. Everything runs on the event-loop thread, so
// each synchronous section is atomic.

import { createHash, randomBytes } from 'node:crypto'
import { closeSync, openSync, read } from 'node:fs'
import { mkdir, readdir, rm, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { hasCode } from '../errors/index.js'
import type { HeaderMap } from '../http/types.js'
import { DiskIndex, type FileRef, type IndexRow } from './disk-index.js'
import { mergeRevalidatedHeaders } from './http-semantics.js'
import { bodyBuffer, createMemoryTier, memoryEntry, replaceObject, type MemoryTier } from './memory-tier.js'
import type { ResolvedOptions } from './options.js'
import { describeStored, type StoredObject } from './stored-object.js'
import type { CacheCounters, PurgeTarget } from './types.js'
import { parseVary, primaryKey, VARIANT_SEPARATOR } from './vary.js'

const FLUSH_INTERVAL_MS = 1000
const EVICT_BATCH = 128
const TOUCH_BATCH_MAX = 4096
/** Per disk object beyond its bytes: a file system block partly used, plus its SQLite index row. */
const DISK_OBJECT_OVERHEAD_BYTES = 4096
/** Bound on remembered Vary field lists; past it the list is cleared and relearnt from the index. */
const VARY_SPECS_MAX = 65_536

function fileNameFor(key: string): string {
  const hash = createHash('sha256').update(key).digest('hex')
  // A per-version suffix: a replaced or evicted version can be unlinked without any risk of
  // removing a newer version of the same key that was renamed into place meanwhile.
  return `${hash.slice(0, 2)}/${hash}.${randomBytes(6).toString('hex')}`
}

async function readWhole(fd: number, size: number, isShared: boolean): Promise<Buffer> {
  const body = isShared ? bodyBuffer(size, true) : Buffer.allocUnsafe(size)
  let offset = 0
  while (offset < size) {
    const n = await new Promise<number>((resolve, reject) => {
      read(fd, body, offset, size - offset, offset, (err, bytesRead) => {
        if (err !== null) reject(err)
        else resolve(bytesRead)
      })
    })
    if (n === 0) throw new Error('object file shorter than its index row')
    offset += n
  }
  return body
}

/** Where a finished fill's file goes: objects/<file>, named per version (fileNameFor). */
export interface ObjectSlot {
  readonly file: string
  readonly path: string
}

export class CacheStore {
  readonly #o: ResolvedOptions
  readonly #index: DiskIndex
  readonly #objectsDir: string
  /** Where fills keep their temp files; emptied at open (crash safety). */
  readonly tmpDir: string
  /** The engine reads it directly on the hit path; only the store inserts and removes. */
  readonly memory: MemoryTier
  readonly #counters: CacheCounters
  /**
   * Vary field lists by primary key, for targets stored as variants (RFC 9111 §4.1). A cache of
   * the index (each variant row keeps its Vary header), bounded by VARY_SPECS_MAX.
   */
  readonly #varySpecs = new Map<string, readonly string[]>()
  /** Keys served since the last flush, with the access stamp of their latest use; written to
   * last_access in one transaction (batched). */
  readonly #touched = new Map<string, number>()
  /** The last last_access stamp handed out (see #accessStamp). */
  #lastAccessStamp = 0
  /** Bytes of temp files written by fills in progress; counted against the disk budget. */
  #inflightBytes = 0
  #eviction: Promise<void> | null = null
  /** Told of every memory entry that leaves, is replaced or changes in place (watchMemory). */
  #onMemoryChange: ((key: string) => void) | null = null
  readonly #timer: NodeJS.Timeout
  #isClosed = false

  private constructor(o: ResolvedOptions, index: DiskIndex, counters: CacheCounters) {
    this.#o = o
    this.#index = index
    this.#objectsDir = join(o.dir, 'objects')
    this.tmpDir = join(o.dir, 'tmp')
    this.#counters = counters
    this.memory = createMemoryTier(o.memoryMaxBytes, (key) => this.#onMemoryChange?.(key))
    this.#timer = setInterval(() => {
      this.#flushTouches()
    }, FLUSH_INTERVAL_MS)
    this.#timer.unref()
  }

  /** Open (or create) the store under o.dir and reconcile the index with the files. */
  static async open(o: ResolvedOptions, counters: CacheCounters): Promise<CacheStore> {
    const objectsDir = join(o.dir, 'objects')
    const tmpDir = join(o.dir, 'tmp')
    await mkdir(objectsDir, { recursive: true })
    // Crash safety: temp files are never committed after a restart.
    await rm(tmpDir, { recursive: true, force: true })
    await mkdir(tmpDir, { recursive: true })
    for (let i = 0; i < 256; i++) await mkdir(join(objectsDir, i.toString(16).padStart(2, '0')), { recursive: true })

    // A damaged index never stops a node (README.md): moved aside, counted, started empty.
    let isDamageLogged = false
    // Damage met while reconciling below is only logged; counting starts once the store is open.
    let isCounting = false
    const index = DiskIndex.open(join(o.dir, 'index.sqlite'), {
      now: o.now,
      onRebuild: (err, aside) => {
        counters.indexRebuilds++
        o.log.warn({ err, aside }, 'cache index damaged: moved aside, starting with an empty disk tier')
      },
      onCorrupt: (err) => {
        // Logged once (every later one is only counted): a damaged page can fail every request.
        if (!isDamageLogged) {
          o.log.error({ err }, 'cache index damaged at run time: misses until the next start rebuilds it')
        }
        isDamageLogged = true
        if (isCounting) counters.indexErrors++
      },
    })
    try {
      const valid = new Set<string>()
      const dropped: string[] = []
      for (const ref of index.all()) {
        const st = await stat(join(objectsDir, ref.file)).catch(() => null)
        if (st === null || !st.isFile() || st.size !== ref.size) {
          dropped.push(ref.key)
          if (st !== null) await rm(join(objectsDir, ref.file), { force: true, recursive: true })
          continue
        }
        valid.add(ref.file)
        counters.diskBytes += ref.size
        counters.objects++
      }
      index.deleteMany(dropped)
      let orphans = 0
      for (const sub of await readdir(objectsDir, { withFileTypes: true })) {
        if (!sub.isDirectory()) {
          await rm(join(objectsDir, sub.name), { force: true, recursive: true })
          orphans++
          continue
        }
        for (const name of await readdir(join(objectsDir, sub.name))) {
          if (valid.has(`${sub.name}/${name}`)) continue
          await rm(join(objectsDir, sub.name, name), { force: true, recursive: true })
          orphans++
        }
      }
      if (dropped.length > 0 || orphans > 0)
        o.log.warn({ dropped: dropped.length, orphans }, 'cache index reconciled with files')
    } catch (err) {
      index.close()
      throw err
    }
    const store = new CacheStore(o, index, counters)
    isCounting = true
    store.#maybeEvict()
    return store
  }

  get isClosed(): boolean {
    return this.#isClosed
  }

  /**
   * One listener told synchronously, as it happens, of every memory entry that leaves the tier
   * (delete, purge, eviction), is replaced (a newer fill, a promotion) or changes in place (a 304's
   * headers, a soft purge): worker threads' local copies are dropped (docs/architecture.md §9.1).
   */
  watchMemory(listener: (key: string) => void): void {
    this.#onMemoryChange = listener
  }

  /** True when the key is stored (memory or disk), fresh or not. */
  has(key: string): boolean {
    return this.memory.has(key) || this.#index.getRef(key) !== undefined
  }

  /** The stored object of a key without counting it as a use (memory first), or null. */
  lookup(key: string): StoredObject | null {
    const entry = this.memory.peek(key)
    if (entry !== undefined) return entry.obj
    const row = this.#index.get(key)
    return row === undefined ? null : this.fromRow(row)
  }

  /** The disk tier's row of a key (the memory tier is the caller's to check first). */
  row(key: string): IndexRow | undefined {
    return this.#index.get(key)
  }

  fromRow(row: IndexRow): StoredObject {
    const obj = describeStored({
      key: row.key,
      status: row.status,
      size: row.size,
      headers: JSON.parse(row.headers) as HeaderMap,
      storedAt: row.stored_at,
      file: row.file,
      config: this.#o,
    })
    // The index is the truth: its expires_at wins over a recomputation under today's config.
    return { ...obj, expiresAt: row.expires_at }
  }

  /**
   * Open a disk object's file for reading, or null (its row dropped) when it is gone. Called
   * synchronously right after the index lookup, so eviction or purge (which delete the row first,
   * then unlink) cannot slip in between: an open descriptor keeps an unlinked file readable on
   * POSIX until the reader closes it.
   */
  openObject(obj: StoredObject, file: string): number | null {
    try {
      return openSync(join(this.#objectsDir, file), 'r')
    } catch (err) {
      // The index is the truth, but a file removed behind our back must not be served: drop it.
      this.#o.log.warn({ err, key: obj.key }, 'cache object file missing; dropping index row')
      this.#dropRow(obj.key, file, obj.size)
      return null
    }
  }

  /**
   * Read a small disk object whole (closing `fd`) and promote it into the memory tier while it is
   * still the stored version; null (its row dropped) when the read failed.
   */
  async readSmall(obj: StoredObject, file: string, fd: number): Promise<Buffer | null> {
    let body: Buffer
    try {
      body = await readWhole(fd, obj.size, this.#o.isMemoryShared)
    } catch (err) {
      this.#o.log.error({ err, key: obj.key }, 'cache object read failed')
      this.#dropRow(obj.key, file, obj.size)
      return null
    } finally {
      closeSync(fd)
    }
    if (!this.#isClosed && this.#index.getRef(obj.key)?.file === file) {
      this.memory.set(obj.key, memoryEntry(obj, body, false))
    }
    return body
  }

  /** A prefetched object was used once: its row forgets the mark (a direct write, once per object). */
  clearPrefetched(key: string): void {
    if (!this.#isClosed) this.#index.clearPrefetched(key)
  }

  // ---- storing ---------------------------------------------------------------------------------

  /** Store a memory-only object (negative answers: README.md). */
  storeInMemory(obj: StoredObject, body: Buffer, isPrefetched: boolean): void {
    this.memory.set(obj.key, memoryEntry(obj, body, isPrefetched))
  }

  /** Bytes a fill in progress wrote to its temp file (+) or gave up (−); counted against the budget. */
  addInflight(bytes: number): void {
    this.#inflightBytes += bytes
    if (bytes > 0) this.#maybeEvict()
  }

  /** Make room before a fill's file is renamed in, so objects/ stays within the budget. */
  async makeRoom(): Promise<void> {
    if (this.#overHigh()) await this.#evict()
  }

  /** A new, unique place under objects/ for a version of `key`. */
  newSlot(key: string): ObjectSlot {
    const file = fileNameFor(key)
    return { file, path: join(this.#objectsDir, file) }
  }

  /**
   * Index a file renamed into its slot (the row is the commit point), replace the previous
   * version and keep small bodies in memory too. If SQLite refuses the row the file is unlinked
   * (no orphan) and the error rethrown.
   */
  async insert(obj: StoredObject, file: string, isPrefetched: boolean, body: Buffer | null): Promise<void> {
    const { key, size } = obj
    const row: IndexRow = {
      key,
      file,
      size,
      status: obj.status,
      headers: JSON.stringify(obj.headers),
      stored_at: obj.storedAt,
      expires_at: obj.expiresAt,
      last_access: this.#accessStamp(),
      etag: obj.etag ?? null,
      last_modified: obj.lastModified ?? null,
      prefetched: isPrefetched ? 1 : 0,
    }
    let previous
    try {
      previous = this.#index.put(row)
    } catch (err) {
      // SQLite refused the row (disk full, I/O error): the file must not outlive it as an orphan.
      await this.unlinkObject(file)
      throw err
    }
    this.#counters.diskBytes += size
    this.#counters.objects++
    if (previous !== undefined) {
      this.#counters.diskBytes -= previous.size
      this.#counters.objects--
    }
    this.memory.delete(key)
    if (size <= this.#o.memoryObjectMaxBytes && body !== null)
      this.memory.set(key, memoryEntry(obj, body, isPrefetched))
    if (previous !== undefined && previous.file !== file) await this.unlinkObject(previous.file)
  }

  /** Apply a 304 to the stored copy it validated (if that version is still the stored one). */
  refresh(base: StoredObject, fresh: HeaderMap, receivedAt: number): boolean {
    if (this.#isClosed) return false
    const headers = mergeRevalidatedHeaders(base.headers, fresh)
    const obj = describeStored({
      key: base.key,
      status: base.status,
      size: base.size,
      headers,
      storedAt: receivedAt,
      file: base.file,
      config: this.#o,
    })
    let isRefreshed = false
    const entry = this.memory.peek(base.key)
    if (entry !== undefined && entry.obj.file === base.file) {
      replaceObject(entry, obj)
      this.#onMemoryChange?.(base.key)
      isRefreshed = true
    }
    if (base.file !== null && this.#index.getRef(base.key)?.file === base.file) {
      this.#index.refresh(base.key, JSON.stringify(headers), obj.storedAt, obj.expiresAt, obj.etag, obj.lastModified)
      isRefreshed = true
    }
    return isRefreshed
  }

  // ---- variants (RFC 9111 §4.1) -------------------------------------------------------------

  /** The Vary fields of a target stored as variants, or null (plainly stored, or not at all). */
  varyOf(primary: string): readonly string[] | null {
    const known = this.#varySpecs.get(primary)
    if (known !== undefined) return known
    // Not remembered (a restart, or the list was cleared): a variant row in the index says.
    if (this.#index.getRef(primary) !== undefined) return null
    const row = this.#index.firstWithPrefix(primary + VARIANT_SEPARATOR)
    if (row === undefined) return null
    const vary = parseVary((JSON.parse(row.headers) as HeaderMap)['vary'])
    if (vary === null || vary === '*') return null
    this.rememberVary(primary, vary)
    return vary
  }

  rememberVary(primary: string, fields: readonly string[]): void {
    if (this.#varySpecs.size >= VARY_SPECS_MAX && !this.#varySpecs.has(primary)) this.#varySpecs.clear()
    this.#varySpecs.set(primary, fields)
  }

  /**
   * A newly stored answer replaces the other shape of its target: a plain copy once the target
   * varies, every variant once it no longer does (RFC 9111 §4.1: the latest Vary governs).
   */
  async dropOtherShapes(key: string): Promise<void> {
    const primary = primaryKey(key)
    let refs: FileRef[]
    if (key !== primary) {
      this.memory.delete(primary)
      const ref = this.#index.getRef(primary)
      refs = ref === undefined ? [] : [ref]
      if (ref !== undefined) this.#index.delete(primary)
    } else {
      const hadVariants = this.#varySpecs.delete(primary)
      const prefix = primary + VARIANT_SEPARATOR
      if (!hadVariants && this.#index.firstWithPrefix(prefix) === undefined) return
      for (const k of [...this.memory.keys()]) if (k.startsWith(prefix)) this.memory.delete(k)
      refs = this.#index.prefix(prefix)
      this.#index.deletePrefix(prefix)
    }
    for (const ref of refs) {
      this.#counters.diskBytes -= ref.size
      this.#counters.objects--
    }
    await Promise.all(refs.map((ref) => this.unlinkObject(ref.file)))
  }

  // ---- purge and close -----------------------------------------------------------------------

  /** Remove a key with its variants (RFC 9111 §4.1: responses of one target), or a key prefix. */
  async purge(target: PurgeTarget): Promise<number> {
    const removedKeys = new Set<string>()
    const refs: FileRef[] = []
    let prefix: string
    if ('key' in target) {
      const { key } = target
      if (this.memory.delete(key)) removedKeys.add(key)
      const ref = this.#index.getRef(key)
      if (ref !== undefined) {
        refs.push(ref)
        this.#index.delete(key)
      }
      this.#varySpecs.delete(key)
      prefix = key + VARIANT_SEPARATOR
    } else {
      prefix = target.prefix
      for (const key of [...this.#varySpecs.keys()]) if (key.startsWith(prefix)) this.#varySpecs.delete(key)
    }
    for (const key of [...this.memory.keys()]) {
      if (key.startsWith(prefix) && this.memory.delete(key)) removedKeys.add(key)
    }
    refs.push(...this.#index.prefix(prefix))
    this.#index.deletePrefix(prefix)
    for (const ref of refs) {
      removedKeys.add(ref.key)
      this.#counters.diskBytes -= ref.size
      this.#counters.objects--
      if (ref.prefetched === 1) this.#counters.prefetchWasted++
    }
    this.#counters.purged += removedKeys.size
    await Promise.all(refs.map((ref) => this.unlinkObject(ref.file)))
    return removedKeys.size
  }

  /**
   * Soft purge: a key with its variants, or a key prefix, stays stored but is stale from `now` on,
   * so the next request revalidates it (a 304 keeps the bytes) instead of fetching it whole; stale-
   * while-revalidate and stale-if-error apply as to any stale answer. Returns how many objects.
   */
  expire(target: PurgeTarget, now: number): number {
    const marked = new Set<string>()
    const isTarget =
      'key' in target
        ? (key: string): boolean => key === target.key || key.startsWith(target.key + VARIANT_SEPARATOR)
        : (key: string): boolean => key.startsWith(target.prefix)
    for (const [key, entry] of this.memory.entries()) {
      if (!isTarget(key)) continue
      if (entry.obj.expiresAt > now) {
        replaceObject(entry, { ...entry.obj, expiresAt: now })
        this.#onMemoryChange?.(key)
      }
      marked.add(key)
    }
    const prefix = 'key' in target ? target.key + VARIANT_SEPARATOR : target.prefix
    if ('key' in target && this.#index.expireKey(target.key, now)) marked.add(target.key)
    for (const key of this.#index.expirePrefix(prefix, now)) marked.add(key)
    this.#counters.purged += marked.size
    return marked.size
  }

  /** Flush pending access times, stop the timer, let a running eviction finish, close the index. */
  async close(): Promise<void> {
    if (this.#isClosed) return
    this.#flushTouches()
    this.#isClosed = true
    clearInterval(this.#timer)
    await this.#eviction
    this.#index.close()
    this.memory.clear()
  }

  // ---- access times and eviction -------------------------------------------------------------

  #dropRow(key: string, file: string, size: number): void {
    if (this.#isClosed || this.#index.getRef(key)?.file !== file) return
    this.#index.delete(key)
    this.memory.delete(key)
    this.#counters.diskBytes -= size
    this.#counters.objects--
  }

  /**
   * Remember a disk-backed object's access for the next batched last_access write. Memory-only
   * objects (404s) have no row to touch. The batch is bounded: a full one is written at once, so a
   * flood of distinct keys between two timer flushes cannot grow it.
   */
  touch(obj: StoredObject): void {
    if (obj.file === null) return
    this.#touched.set(obj.key, this.#accessStamp())
    if (this.#touched.size >= TOUCH_BATCH_MAX) this.#flushTouches()
  }

  /**
   * A last_access value later than every one handed out before: objects stored within one clock
   * millisecond keep their order, so LRU eviction never takes the newest of a burst first (ties in
   * the index's last_access order fall back to key order).
   */
  #accessStamp(): number {
    this.#lastAccessStamp = Math.max(this.#o.now(), this.#lastAccessStamp + 1)
    return this.#lastAccessStamp
  }

  #flushTouches(): void {
    if (this.#touched.size === 0 || this.#isClosed) return
    const entries = [...this.#touched]
    this.#touched.clear()
    try {
      // Each key keeps the stamp of when it was read, not of the flush: an object read before
      // others were stored stays older than they are.
      this.#index.touchMany(entries)
    } catch (err) {
      this.#o.log.error({ err }, 'cache access-time flush failed')
    }
  }

  /**
   * What the disk tier uses against maxBytes: object bytes, temp bytes of fills in progress, and
   * per object its file's partly used last block and its index row, so a flood of distinct tiny
   * objects is bounded by the budget too (diskBytes alone counts 1 byte for a 1-byte object).
   */
  #diskUsage(): number {
    return this.#counters.diskBytes + this.#inflightBytes + this.#counters.objects * DISK_OBJECT_OVERHEAD_BYTES
  }

  #overHigh(): boolean {
    return this.#diskUsage() > this.#o.maxBytes * this.#o.highWatermark
  }

  /** Start eviction off the serving path when usage crossed the high watermark. */
  #maybeEvict(): void {
    if (this.#eviction === null && this.#overHigh()) {
      this.#evict().catch((err: unknown) => {
        this.#o.log.error({ err }, 'cache eviction failed')
      })
    }
  }

  /** One eviction run at a time; callers share it. */
  #evict(): Promise<void> {
    this.#eviction ??= new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.#evictDown())
      .finally(() => {
        this.#eviction = null
      })
    return this.#eviction
  }

  /** LRU by last_access down to the low watermark, in batches (one transaction each). */
  async #evictDown(): Promise<void> {
    this.#flushTouches()
    const target = this.#o.maxBytes * this.#o.lowWatermark
    while (!this.#isClosed && this.#diskUsage() > target) {
      const candidates = this.#index.oldest(EVICT_BATCH)
      if (candidates.length === 0) break
      // Take only as many of the oldest as needed to reach the low watermark.
      const refs: FileRef[] = []
      let projected = this.#diskUsage()
      for (const ref of candidates) {
        if (projected <= target) break
        refs.push(ref)
        projected -= ref.size + DISK_OBJECT_OVERHEAD_BYTES
      }
      this.#index.deleteMany(refs.map((r) => r.key))
      for (const ref of refs) {
        this.memory.delete(ref.key)
        this.#counters.diskBytes -= ref.size
        this.#counters.objects--
        this.#counters.evictions++
        this.#counters.evictedBytes += ref.size
        // Still marked: no client hit it between its prefetch and now (docs/architecture.md §6).
        if (ref.prefetched === 1) this.#counters.prefetchWasted++
      }
      // Readers hold open descriptors, so unlinking under them is safe (POSIX).
      await Promise.all(refs.map((ref) => this.unlinkObject(ref.file)))
    }
  }

  async unlinkObject(file: string): Promise<void> {
    try {
      await unlink(join(this.#objectsDir, file))
    } catch (err) {
      if (!hasCode(err, 'ENOENT')) this.#o.log.warn({ err, file }, 'cache object unlink failed')
    }
  }
}
