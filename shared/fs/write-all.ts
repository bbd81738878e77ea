// Writing a whole buffer to a file. A write(2) may write fewer bytes than asked (a signal, a full
// pipe, some filesystems), so every file writer loops until the buffer is done; this is that loop,
// once.
import type { FileHandle } from 'node:fs/promises'
import { VcdnError } from '../errors/index.js'

/** The part of a FileHandle that writeAll() uses (tests pass a handle that writes short). */
export type WritableHandle = Pick<FileHandle, 'write'>

/**
 * Write every byte of `chunk`: at the handle's current position, or at `position` onwards. A write
 * that makes no progress throws ERR_STORE_IO instead of looping forever; errors from the handle
 * (ENOSPC, EIO, …) propagate unchanged.
 */
export async function writeAll(fh: WritableHandle, chunk: Uint8Array, position?: number): Promise<void> {
  let offset = 0
  while (offset < chunk.byteLength) {
    const at = position === undefined ? null : position + offset
    const { bytesWritten } = await fh.write(chunk, offset, chunk.byteLength - offset, at)
    if (bytesWritten <= 0) throw new VcdnError('ERR_STORE_IO', 'file write made no progress')
    offset += bytesWritten
  }
}
