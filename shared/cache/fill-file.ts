// A fill's temp file, end to end (docs/architecture.md §5.3): created under tmp/, written at
// positions as chunks arrive, read back by readers who lag behind the fill's in-memory window,
// fsynced and renamed into objects/ on commit, or unlinked when nothing is stored. The handle stays
// open until the fill's last reader lets go, so the bytes stay readable after the rename and after
// an unlink (POSIX). Owned by one Fill; only the fill's fetch (fetch.ts) writes, syncs and moves it.

import { randomBytes } from 'node:crypto'
import { open, rename, unlink, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { writeAll } from '../fs/index.js'

export class FillFile {
  readonly #fh: FileHandle
  /** The temp path until the file is moved into objects/ or discarded. */
  #tmpPath: string | null
  #closing: Promise<void> | null = null

  private constructor(fh: FileHandle, tmpPath: string) {
    this.#fh = fh
    this.#tmpPath = tmpPath
  }

  static async create(tmpDir: string): Promise<FillFile> {
    const tmpPath = join(tmpDir, randomBytes(12).toString('hex'))
    return new FillFile(await open(tmpPath, 'w+'), tmpPath)
  }

  /** Write all of `chunk` at `position` (a write may be partial; the rest follows). */
  write(chunk: Buffer, position: number): Promise<void> {
    return writeAll(this.#fh, chunk, position)
  }

  /** Up to `length` bytes at `position`; fewer only at the end of what was written. */
  async read(position: number, length: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(length)
    const { bytesRead } = await this.#fh.read(buffer, 0, length, position)
    return buffer.subarray(0, bytesRead)
  }

  /** Commit step 1: the bytes are durable before the file gets its final name. */
  sync(): Promise<void> {
    return this.#fh.sync()
  }

  /** Commit step 2: the file becomes the object at `path` (atomic rename within one file system). */
  async moveTo(path: string): Promise<void> {
    const tmpPath = this.#tmpPath
    if (tmpPath === null) throw new Error('fill file already moved or discarded')
    await rename(tmpPath, path)
    this.#tmpPath = null
  }

  /** Remove the temp file if it was not moved. Open handles keep working (POSIX). */
  async discard(): Promise<void> {
    const path = this.#tmpPath
    this.#tmpPath = null
    if (path !== null) await unlink(path).catch(() => {})
  }

  /** Close the handle once (the fill calls it when its writer and every reader let go). */
  close(): Promise<void> {
    this.#closing ??= this.#fh.close().catch(() => {})
    return this.#closing
  }
}
