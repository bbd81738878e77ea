// The worker wire protocol's parsers, as tables: body → parsed value, or ERR_API_BODY naming the field.
import t from 'tap'
import {
  audioStoreKey,
  chunkStoreKey,
  DEFAULT_LEASE_MS,
  parseAudioPayload,
  parseChunkPayload,
  parseStitchPayload,
  workStorePrefix,
  parseClaimRequest,
  parseFailRequest,
  parseHeartbeatRequest,
  parseJobResult,
  type JobResult,
} from '../index.js'

const RENDITION = { name: '720p', width: 1280, height: 720, bandwidth: 3e6, codecs: 'avc1.64001f' }

t.test('claim and heartbeat bodies: defaults filled, lease bounds and worker ids enforced', async (t) => {
  const cases: [string, Record<string, unknown>, unknown][] = [
    ['a worker id alone', { workerId: 'w-1' }, { workerId: 'w-1', leaseMs: DEFAULT_LEASE_MS }],
    ['a lease rounded to whole ms', { workerId: 'w', leaseMs: 1500.4 }, { workerId: 'w', leaseMs: 1500 }],
    ['no worker id', {}, /workerId/],
    ['a worker id with a slash', { workerId: 'a/b' }, /workerId/],
    ['a lease under a second', { workerId: 'w', leaseMs: 999 }, /leaseMs/],
    ['a lease over an hour', { workerId: 'w', leaseMs: 3_600_001 }, /leaseMs/],
    ['a lease as text', { workerId: 'w', leaseMs: '5000' }, /leaseMs/],
  ]
  for (const [name, body, expected] of cases) {
    if (expected instanceof RegExp) {
      t.throws(() => parseClaimRequest(body), { code: 'ERR_API_BODY', message: expected }, name)
    } else t.same(parseClaimRequest(body), expected, name)
  }
  t.same(parseHeartbeatRequest({ workerId: 'w' }), { workerId: 'w', leaseMs: DEFAULT_LEASE_MS, progress: 0 })
  t.throws(() => parseHeartbeatRequest({ workerId: 'w', progress: 1.5 }), { code: 'ERR_API_BODY', message: /progress/ })
})

t.test('a job result: renditions checked field by field, optional fields null', async (t) => {
  const ok: [string, unknown, JobResult][] = [
    [
      'the minimum',
      { renditions: [RENDITION] },
      {
        durationS: null,
        renditions: [{ ...RENDITION, averageBandwidth: null, frameRate: null }],
        thumbnails: null,
      },
    ],
    [
      'with thumbnails',
      { durationS: 4, renditions: [], thumbnails: { poster: 'thumbs/poster.jpg', sprites: ['s1.jpg'] } },
      { durationS: 4, renditions: [], thumbnails: { poster: 'thumbs/poster.jpg', sprites: ['s1.jpg'], vtt: null } },
    ],
  ]
  for (const [name, raw, expected] of ok) t.same(parseJobResult(raw), expected, name)
  const bad: [string, unknown, RegExp][] = [
    ['not an object', 'x', /result must be an object/],
    ['no renditions', {}, /result.renditions must be an array/],
    ['a rendition name that is a path', { renditions: [{ ...RENDITION, name: '../x' }] }, /renditions\[0\].name/],
    ['a negative width', { renditions: [{ ...RENDITION, width: -1 }] }, /renditions\[0\].width/],
    ['sprites not a list', { renditions: [], thumbnails: { sprites: 'a' } }, /sprites must be an array/],
  ]
  for (const [name, raw, message] of bad) t.throws(() => parseJobResult(raw), { code: 'ERR_API_BODY', message }, name)
})

t.test('a failure: the error object is required, isRetryable only when true', async (t) => {
  t.same(parseFailRequest({ workerId: 'w', error: { code: 'ERR_X', message: 'm', isRetryable: 'yes' } }), {
    workerId: 'w',
    error: { code: 'ERR_X', message: 'm', isRetryable: false },
  })
  t.throws(() => parseFailRequest({ workerId: 'w' }), { code: 'ERR_API_BODY', message: /error must be an object/ })
  t.throws(() => parseFailRequest({ workerId: 'w', error: { message: 'm' } }), {
    code: 'ERR_API_BODY',
    message: /error.code/,
  })
})

t.test('split-and-stitch payloads: fields checked, chunk and audio keys under the work prefix', async (t) => {
  const chunk = { sourceKey: 'sources/a/source', index: 4, startS: 128, lengthS: 2, count: 5 }
  t.same(parseChunkPayload(chunk), chunk)
  t.throws(() => parseChunkPayload({ ...chunk, index: 5 }), /index must be below count/)
  t.throws(() => parseChunkPayload({ ...chunk, startS: -1 }), /startS must be an integer/)
  t.throws(() => parseChunkPayload({ ...chunk, sourceKey: 1 }), /sourceKey/)
  t.same(
    parseStitchPayload({ sourceKey: 's', count: 5 }),
    { sourceKey: 's', count: 5, hasAudioJob: false },
    'a stitch payload without the flag (an older origin) encodes the audio itself',
  )
  t.same(parseStitchPayload({ sourceKey: 's', count: 5, hasAudioJob: true }), {
    sourceKey: 's',
    count: 5,
    hasAudioJob: true,
  })
  t.throws(() => parseStitchPayload({ sourceKey: 's', count: 5, hasAudioJob: 1 }), /hasAudioJob/)
  t.throws(() => parseStitchPayload({ sourceKey: 's', count: 0 }), /count/)
  t.same(parseAudioPayload({ sourceKey: 's', extra: 1 }), { sourceKey: 's' })
  t.throws(() => parseAudioPayload({}), /sourceKey/)
  t.equal(chunkStoreKey('abc', 3), 'work/abc/chunks/3/video.mp4')
  t.ok(chunkStoreKey('abc', 3).startsWith(workStorePrefix('abc')))
  t.equal(audioStoreKey('abc'), 'work/abc/audio/audio.mp4')
})
