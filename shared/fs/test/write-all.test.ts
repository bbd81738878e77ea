import t from 'tap'
import { mkdtemp, open, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeAll, type WritableHandle } from '../index.js'

/** A handle that writes at most `max` bytes per call into `out`, recording each call's position. */
function shortWriter(max: number, out: Buffer, positions: Array<number | null>): WritableHandle {
  let cursor = 0
  const write = async (buf: Uint8Array, offset: number, length: number, position: number | null) => {
    const n = Math.min(max, length)
    positions.push(position)
    const at = position ?? cursor
    Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).copy(out, at, offset, offset + n)
    cursor = at + n
    return { bytesWritten: n, buffer: buf }
  }
  return { write } as unknown as WritableHandle
}

t.test('writes every byte when the file takes only a few bytes per write', async (t) => {
  const out = Buffer.alloc(10)
  const positions: Array<number | null> = []
  await writeAll(shortWriter(3, out, positions), Buffer.from('abcdefghij'))
  t.equal(out.toString(), 'abcdefghij')
  t.same(positions, [null, null, null, null], 'at the current position, four short writes')
})

t.test('writes at the given position onwards across short writes', async (t) => {
  const out = Buffer.alloc(12, '.')
  const positions: Array<number | null> = []
  await writeAll(shortWriter(4, out, positions), Buffer.from('abcdefghij'), 2)
  t.equal(out.toString(), '..abcdefghij')
  t.same(positions, [2, 6, 10])
})

t.test('a write that makes no progress fails with ERR_STORE_IO instead of looping', async (t) => {
  const stuck = { write: async (buf: Uint8Array) => ({ bytesWritten: 0, buffer: buf }) } as unknown as WritableHandle
  await t.rejects(writeAll(stuck, Buffer.from('x')), { code: 'ERR_STORE_IO' })
})

t.test('writes a real file in order, appending at the current position', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vcdn-fs-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'f')
  const fh = await open(file, 'w')
  try {
    await writeAll(fh, Buffer.from('hello '))
    await writeAll(fh, Buffer.from('world'))
    await writeAll(fh, Buffer.from('W'), 6)
  } finally {
    await fh.close()
  }
  t.equal(await readFile(file, 'utf8'), 'hello World')
})
