import t from 'tap'
import { VcdnError } from '../../errors/index.js'
import type { HeaderMap, ResponseSink } from '../../http/index.js'
import { RewritingSink } from '../index.js'

/** What the client would receive. */
class Recorder implements ResponseSink {
  status: number | undefined
  headers: HeaderMap = {}
  contentLength: number | undefined
  body = Buffer.alloc(0)
  isEnded = false
  wasCut = false
  isAborted = false

  onAbort(): void {}

  start(status: number, headers: HeaderMap, contentLength?: number): void {
    if (this.status !== undefined) throw new Error('start() called twice')
    this.status = status
    this.headers = headers
    this.contentLength = contentLength
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.status === undefined || this.isEnded) throw new Error('write() out of order')
    this.body = Buffer.concat([this.body, chunk])
    return Promise.resolve()
  }

  end(chunk?: Uint8Array): void {
    if (this.status === undefined || this.isEnded) throw new Error('end() out of order')
    if (chunk !== undefined) this.body = Buffer.concat([this.body, chunk])
    this.isEnded = true
  }

  abort(): void {
    this.wasCut = true
    this.isAborted = true
  }
}

const upper = (body: Buffer): Uint8Array => Buffer.from(body.toString('utf8').toUpperCase() + '!')
const STORED: HeaderMap = {
  'content-type': 'application/vnd.apple.mpegurl',
  'cache-control': 'max-age=60',
  etag: '"abc"',
  'accept-ranges': 'bytes',
  'last-modified': 'Tue, 01 Dec 2026 00:00:00 GMT',
  'x-cache': 'HIT',
}

t.test(
  'a 200 body is buffered and sent rewritten, with its own length and without the stored validators',
  async (t) => {
    const res = new Recorder()
    const sink = new RewritingSink(res, upper)
    sink.start(200, STORED, 6)
    await sink.write(Buffer.from('abc'))
    t.equal(res.status, undefined, 'nothing sent before the whole body is in')
    sink.end(Buffer.from('def'))
    t.equal(res.status, 200)
    t.equal(res.body.toString(), 'ABCDEF!')
    t.equal(res.contentLength, 7)
    t.same(res.headers, {
      'content-type': 'application/vnd.apple.mpegurl',
      'cache-control': 'max-age=60',
      'last-modified': 'Tue, 01 Dec 2026 00:00:00 GMT',
      'x-cache': 'HIT',
    })
    t.equal(sink.status, 200)
    t.equal(sink.code, null)
  },
)

t.test('anything but a 200 passes through untouched', async (t) => {
  for (const status of [304, 404, 502]) {
    const res = new Recorder()
    const sink = new RewritingSink(res, upper)
    sink.start(status, STORED, 3)
    await sink.write(Buffer.from('n'))
    sink.end(Buffer.from('o!'))
    t.equal(res.status, status)
    t.equal(res.body.toString(), 'no!')
    t.equal(res.headers['etag'], '"abc"')
    t.equal(sink.status, status)
  }
})

t.test('a body beyond the cap is refused with ERR_PLAYLIST_TOO_LARGE, announced or not', async (t) => {
  for (const announced of [20, undefined]) {
    const res = new Recorder()
    const sink = new RewritingSink(res, upper, 10)
    sink.start(200, STORED, announced)
    await sink.write(Buffer.alloc(8))
    await sink.write(Buffer.alloc(8))
    sink.end()
    sink.abort()
    t.equal(res.status, 502, `announced ${String(announced)}`)
    t.match(res.body.toString(), 'ERR_PLAYLIST_TOO_LARGE')
    t.equal(res.wasCut, false, 'answered, not cut')
    t.equal(sink.code, 'ERR_PLAYLIST_TOO_LARGE')
  }
})

t.test('a rewrite that throws is answered with its code, an unexpected throw with ERR_INTERNAL', async (t) => {
  const cases: [() => never, string][] = [
    [
      () => {
        throw new VcdnError('ERR_PLAYLIST_INVALID')
      },
      'ERR_PLAYLIST_INVALID',
    ],
    [
      () => {
        throw new TypeError('bug')
      },
      'ERR_INTERNAL',
    ],
  ]
  for (const [rewrite, code] of cases) {
    const res = new Recorder()
    const sink = new RewritingSink(res, rewrite)
    sink.start(200, STORED, 2)
    sink.end(Buffer.from('ab'))
    t.match(res.body.toString(), code)
    t.equal(sink.code, code)
  }
})

t.test('an upstream cut mid-body cuts the client, as without a rewrite', async (t) => {
  const res = new Recorder()
  const sink = new RewritingSink(res, upper)
  sink.start(200, STORED, 10)
  await sink.write(Buffer.from('abc'))
  sink.abort()
  t.equal(res.wasCut, true)
  t.equal(res.status, undefined, 'no head was sent')
  t.equal(sink.isAborted, true)
})
