import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, readdir, readFile, rename, rmdir, stat, unlink, writeFile } from 'node:fs/promises'
import type { BigIntStats, Dirent } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { resolve } from 'node:path'
import { VcdnError, hasCode, isNoSpace, isVcdnError } from '../errors/index.js'
import { writeAll } from '../fs/index.js'
import { contentTypeFor } from './content-type.js'
import { isKeySegment, validateStoreKey, validateStorePrefix } from './keys.js'
import type { ByteRange, ListOptions, ObjectInfo, PutOptions, Store } from './types.js'

export interface FsStoreOptions {
  /** Root directory; object `v/a/b.m4s` lives at `<dir>/v/a/b.m4s` so operators can inspect it. */
  dir: string
}

const DEFAULT_LIST_LIMIT = 1000
const MAX_LIST_LIMIT = 10_000
// Names containing '~' are never keys (see keys.ts), so temp and metadata files can sit next to
// the object they belong to (same directory → same filesystem → rename(2) is atomic) and are
// skipped by list().
const META_SUFFIX = '~meta'
const TEMP_MARK = '~tmp-'

/**
 * Object store on a local directory.
 *
 * - put streams into a temp file in the target directory, fsyncs it, renames it over the key and
 *   fsyncs the directory: a reader opens either the old inode or the complete new one.
 * - get opens the file once and derives the info from that descriptor (fstat), so the metadata
 *   and the bytes always belong to the same version even while a put replaces it.
 * - The ETag is derived from (inode, size, mtime ns): no read of the body, stable across restarts,
 *   and a replacement is a new inode written later, so it changes.
 * - The content type comes from the key's extension; a put with a different explicit type stores
 *   it in a `<name>~meta` sidecar.
 */
export class FsStore implements Store {
  readonly #dir: string

  constructor(opts: FsStoreOptions) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('FsStore: options must be an object')
    if (typeof opts.dir !== 'string' || opts.dir.length === 0) {
      throw new TypeError('FsStore: options.dir must be a non-empty string')
    }
    this.#dir = resolve(opts.dir)
  }

  async head(key: string): Promise<ObjectInfo | null> {
    validateStoreKey(key)
    const path = this.#path(key)
    let st: BigIntStats
    try {
      st = await stat(path, { bigint: true })
    } catch (err) {
      if (isAbsent(err)) return null
      throw ioError('head', key, err)
    }
    if (!st.isFile()) return null
    return toInfo(key, st, await this.#readContentType(key, path, true))
  }

  async get(key: string, range?: ByteRange): Promise<{ info: ObjectInfo; body: NodeJS.ReadableStream } | null> {
    validateStoreKey(key)
    const path = this.#path(key)
    let fh: FileHandle
    try {
      fh = await open(path, 'r')
    } catch (err) {
      if (isAbsent(err)) return null
      throw ioError('get', key, err)
    }
    try {
      const st = await fh.stat({ bigint: true })
      if (!st.isFile()) {
        await fh.close()
        return null
      }
      const info = toInfo(key, st, await this.#readContentType(key, path, true))
      let start = 0
      let end = info.size - 1
      if (range !== undefined) {
        // RFC 9110 §14.1.2: a last-pos past the end is clamped; a first-pos at or past the end
        // makes the range unsatisfiable (§15.5.17).
        if (
          !Number.isSafeInteger(range.start) ||
          !Number.isSafeInteger(range.end) ||
          range.start < 0 ||
          range.end < range.start ||
          range.start >= info.size
        ) {
          throw new VcdnError('ERR_REQUEST_RANGE', `bytes ${range.start}-${range.end} of ${info.size}`)
        }
        start = range.start
        end = Math.min(range.end, info.size - 1)
      }
      // An empty object: a stream with end = -1 would be rejected, and there is nothing to read.
      const body =
        info.size === 0
          ? fh.createReadStream({ start: 0, end: 0, autoClose: true })
          : fh.createReadStream({ start, end, autoClose: true })
      return { info, body }
    } catch (err) {
      await fh.close().catch(() => undefined)
      if (isVcdnError(err)) throw err
      throw ioError('get', key, err)
    }
  }

  async put(key: string, body: AsyncIterable<Uint8Array> | Uint8Array, opts?: PutOptions): Promise<ObjectInfo> {
    validateStoreKey(key)
    const contentType = opts?.contentType ?? contentTypeFor(key)
    if (typeof contentType !== 'string' || contentType.length === 0 || contentType.length > 256) {
      throw new TypeError('FsStore.put: opts.contentType must be a non-empty string of at most 256 chars')
    }
    const path = this.#path(key)
    const tempPath = `${path}${TEMP_MARK}${process.pid}-${randomBytes(6).toString('hex')}`
    const fh = await this.#openTemp(key, path, tempPath)
    let st: BigIntStats
    try {
      if (body instanceof Uint8Array) {
        await writeAll(fh, body)
      } else {
        const it = body[Symbol.asyncIterator]()
        for (;;) {
          let next: IteratorResult<Uint8Array>
          try {
            next = await it.next()
          } catch (err) {
            // The producer failed: propagate its own error untouched, only clean up behind it.
            throw new BodyError(err)
          }
          if (next.done === true) break
          await writeAll(fh, next.value)
        }
      }
      // fsync before rename: otherwise a crash can leave the new name pointing at a file whose
      // data never reached the disk (the classic ext4 zero-length-file problem).
      await fh.sync()
      st = await fh.stat({ bigint: true })
      await fh.close()
    } catch (err) {
      await fh.close().catch(() => undefined)
      await unlink(tempPath).catch(() => undefined)
      if (err instanceof BodyError) throw err.inner
      throw ioError('put', key, err)
    }
    try {
      const metaPath = path + META_SUFFIX
      if (contentType !== contentTypeFor(key)) {
        // Written before the object is renamed in, so a reader never sees the new body with the
        // default type. A concurrent put of the same key with another type may win the sidecar
        // race; documented in README.
        const metaTemp = `${metaPath}${TEMP_MARK}${randomBytes(6).toString('hex')}`
        await writeFile(metaTemp, JSON.stringify({ contentType }), { flush: true })
        await rename(metaTemp, metaPath)
      }
      await rename(tempPath, path)
      if (contentType === contentTypeFor(key)) await unlinkIfPresent(metaPath)
      await fsyncDir(parentOf(path))
    } catch (err) {
      await unlink(tempPath).catch(() => undefined)
      if (hasCode(err, 'EISDIR') || hasCode(err, 'ENOTEMPTY')) {
        throw new VcdnError('ERR_STORE_KEY', 'key collides with an existing prefix', { cause: err })
      }
      throw ioError('put', key, err)
    }
    return toInfo(key, st, contentType)
  }

  async delete(key: string): Promise<boolean> {
    validateStoreKey(key)
    const path = this.#path(key)
    let existed: boolean
    try {
      await unlink(path)
      existed = true
    } catch (err) {
      // EISDIR/EPERM: the key names a directory (a prefix), which is not an object.
      if (isAbsent(err) || hasCode(err, 'EISDIR') || hasCode(err, 'EPERM')) existed = false
      else throw ioError('delete', key, err)
    }
    await unlinkIfPresent(path + META_SUFFIX).catch(() => undefined)
    if (existed) await this.#pruneDirs(parentKey(key))
    return existed
  }

  async deletePrefix(prefix: string): Promise<number> {
    validateStorePrefix(prefix)
    // An empty prefix would wipe the store; nothing in vcdn needs that, so it is refused.
    if (prefix === '') throw new VcdnError('ERR_STORE_KEY', 'deletePrefix needs a non-empty prefix')
    let count = 0
    const dirs = new Set<string>()
    let after: string | undefined
    for (;;) {
      const page = await this.list(
        prefix,
        after === undefined ? { limit: DEFAULT_LIST_LIMIT } : { limit: DEFAULT_LIST_LIMIT, after },
      )
      for (const info of page) {
        const path = this.#path(info.key)
        try {
          await unlink(path)
          count++
        } catch (err) {
          if (!isAbsent(err)) throw ioError('deletePrefix', info.key, err)
        }
        await unlinkIfPresent(path + META_SUFFIX).catch(() => undefined)
        dirs.add(parentKey(info.key))
      }
      const last = page[page.length - 1]
      if (last === undefined || page.length < DEFAULT_LIST_LIMIT) break
      after = last.key
    }
    // Deepest first, so a parent emptied by its children goes too.
    for (const dirKey of [...dirs].sort((a, b) => b.length - a.length)) await this.#pruneDirs(dirKey)
    return count
  }

  async list(prefix: string, opts?: ListOptions): Promise<ObjectInfo[]> {
    validateStorePrefix(prefix)
    const limit = opts?.limit ?? DEFAULT_LIST_LIMIT
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new TypeError(`FsStore.list: opts.limit must be an integer in 1..${MAX_LIST_LIMIT}`)
    }
    const after = opts?.after
    if (after !== undefined && typeof after !== 'string')
      throw new TypeError('FsStore.list: opts.after must be a string')
    const slash = prefix.lastIndexOf('/')
    const out: ObjectInfo[] = []
    await this.#walk(slash === -1 ? '' : prefix.slice(0, slash), prefix, after, limit, out)
    return out
  }

  /**
   * Depth-first walk in key order. Children are visited sorted by `name` for files and `name + '/'`
   * for directories: every key below directory `d` lies in [d + '/', d + '0') ('0' follows '/' in
   * ASCII), so this order is exactly the byte order of the full keys, as S3 lists them.
   */
  async #walk(
    dirKey: string,
    prefix: string,
    after: string | undefined,
    limit: number,
    out: ObjectInfo[],
  ): Promise<void> {
    const dirPath = dirKey === '' ? this.#dir : this.#path(dirKey)
    let entries: Dirent[]
    try {
      entries = await readdir(dirPath, { withFileTypes: true })
    } catch (err) {
      if (isAbsent(err)) return
      throw ioError('list', dirKey, err)
    }
    const names = new Set<string>()
    const children: { name: string; sortKey: string; isDir: boolean }[] = []
    for (const entry of entries) {
      names.add(entry.name)
      if (!isKeySegment(entry.name)) continue
      if (entry.isDirectory()) children.push({ name: entry.name, sortKey: entry.name + '/', isDir: true })
      else if (entry.isFile()) children.push({ name: entry.name, sortKey: entry.name, isDir: false })
    }
    children.sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0))
    for (const child of children) {
      if (out.length >= limit) return
      const key = dirKey === '' ? child.name : `${dirKey}/${child.name}`
      if (child.isDir) {
        const sub = key + '/'
        if (!sub.startsWith(prefix) && !prefix.startsWith(sub)) continue
        if (after !== undefined && after >= key + '0') continue
        await this.#walk(key, prefix, after, limit, out)
      } else {
        if (!key.startsWith(prefix)) continue
        if (after !== undefined && key <= after) continue
        const path = this.#path(key)
        let st: BigIntStats
        try {
          st = await stat(path, { bigint: true })
        } catch (err) {
          if (isAbsent(err)) continue // deleted while listing
          throw ioError('list', key, err)
        }
        if (!st.isFile()) continue
        const hasMeta = names.has(child.name + META_SUFFIX)
        out.push(toInfo(key, st, await this.#readContentType(key, path, hasMeta)))
      }
    }
  }

  async #readContentType(key: string, path: string, mayHaveMeta: boolean): Promise<string> {
    if (mayHaveMeta) {
      try {
        const parsed: unknown = JSON.parse(await readFile(path + META_SUFFIX, 'utf8'))
        if (
          parsed !== null &&
          typeof parsed === 'object' &&
          'contentType' in parsed &&
          typeof parsed.contentType === 'string' &&
          parsed.contentType.length > 0
        ) {
          return parsed.contentType
        }
      } catch {
        // Absent (the common case) or unreadable: fall back to the extension's type.
      }
    }
    return contentTypeFor(key)
  }

  async #openTemp(key: string, path: string, tempPath: string): Promise<FileHandle> {
    // A concurrent delete/deletePrefix may remove the (then empty) parent directory between our
    // mkdir and open; retrying a few times closes that window without any lock.
    for (let attempt = 0; ; attempt++) {
      try {
        await mkdir(parentOf(path), { recursive: true })
        return await open(tempPath, 'wx', 0o644)
      } catch (err) {
        if (hasCode(err, 'ENOENT') && attempt < 5) continue
        if (hasCode(err, 'ENOTDIR') || hasCode(err, 'EEXIST')) {
          throw new VcdnError('ERR_STORE_KEY', 'a parent of the key is an object', { cause: err })
        }
        throw ioError('put', key, err)
      }
    }
  }

  /** Remove now-empty directories from `dirKey` up towards (never including) the root. */
  async #pruneDirs(dirKey: string): Promise<void> {
    let current = dirKey
    while (current !== '') {
      try {
        await rmdir(this.#path(current))
      } catch {
        return // not empty (or already gone): ancestors are not empty either
      }
      current = parentKey(current)
    }
  }

  #path(key: string): string {
    // Safe to concatenate: validateStoreKey rejects '.', '..' and empty segments.
    return `${this.#dir}/${key}`
  }
}

/** Wraps the producer's failure so it can be told apart from our own I/O errors. */
class BodyError extends Error {
  constructor(readonly inner: unknown) {
    super('the body producer failed')
  }
}

function toInfo(key: string, st: BigIntStats, contentType: string): ObjectInfo {
  const etag = createHash('sha1').update(`${st.ino}:${st.size}:${st.mtimeNs}`).digest('hex').slice(0, 32)
  return {
    key,
    size: Number(st.size),
    etag: `"${etag}"`,
    lastModifiedMs: Number(st.mtimeMs),
    contentType,
  }
}

async function fsyncDir(dirPath: string): Promise<void> {
  // Makes the rename itself durable (the directory entry), not only the file's data.
  const dh = await open(dirPath, 'r')
  try {
    await dh.sync()
  } finally {
    await dh.close()
  }
}

async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path)
  } catch (err) {
    if (!isAbsent(err)) throw err
  }
}

function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/'))
}

function parentKey(key: string): string {
  const slash = key.lastIndexOf('/')
  return slash === -1 ? '' : key.slice(0, slash)
}

function isAbsent(err: unknown): boolean {
  return hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')
}

function ioError(op: string, key: string, err: unknown): VcdnError {
  return new VcdnError(isNoSpace(err) ? 'ERR_STORE_FULL' : 'ERR_STORE_IO', `${op} ${key}`, { cause: err })
}
