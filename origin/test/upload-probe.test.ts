// Early rejection (docs/architecture.md §7): a real `vcdn origin` on 127.0.0.1 probes each completed
// tus upload with ffprobe before queuing. Bytes that are not a decodable video, or a header that
// declares a frame beyond the bounds, fail the video at once with a coded reason and queue nothing;
// a real video is queued.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { makeClip, startTier, tempDir, waitFor } from '../../shared/testing/index.js'
import { mintToken, type Role } from '../src/auth.js'
import { execFileSync } from 'node:child_process'
import { isFrameCountConstant, probeUpload, verdictFromProbe } from '../src/probe-upload.js'

const JWT = { secret: 'probe-test-jwt-secret-0123456789abcdef', issuer: 'vcdn', audience: 'vcdn-api' }
const bearer = (sub: string, role: Role): Record<string, string> => ({
  authorization: `Bearer ${mintToken({ sub, role, ttlS: 600 }, JWT)}`,
})

/** A raw YUV4MPEG2 file whose header declares a `w`×`h` frame, followed by a few bytes of it. */
function y4mDeclaring(w: number, h: number): Buffer {
  return Buffer.concat([Buffer.from(`YUV4MPEG2 W${w} H${h} F25:1 Ip A1:1 C420jpeg\nFRAME\n`), Buffer.alloc(4096)])
}

interface VideoJson {
  id: string
  status: string
  error: { code: string; message: string } | null
  upload?: { url: string }
}

t.test('the origin probes a completed upload before queuing it', async (t) => {
  const tmp = tempDir('vcdn-upload-probe-')
  t.teardown(tmp.remove)
  const dataDir = join(tmp.dir, 'data')
  const storeDir = join(tmp.dir, 'store')
  const origin = await startTier(
    'origin',
    {
      tierSecret: 'probe-test-tier-secret-0123456789abcdef',
      dataDir,
      store: { kind: 'fs', dir: storeDir },
      jwt: JWT,
      signingKeys: { k1: 'probe-test-playback-key-0123456789abcdef' },
      activeKey: 'k1',
      edgeBaseUrl: 'http://edge.test:8080',
      accessLog: false,
    },
    { dir: tmp.dir },
  )
  t.teardown(() => origin.stop())

  const api = async (path: string, as: [string, Role], init: RequestInit = {}): Promise<Response> =>
    fetch(`${origin.url}${path}`, {
      ...init,
      headers: { 'content-type': 'application/json', ...bearer(...as), ...(init.headers as Record<string, string>) },
    })
  const getVideo = async (id: string): Promise<VideoJson> =>
    (await (await api(`/v1/videos/${id}`, ['alice', 'uploader'])).json()) as VideoJson
  /** Creates a video and sends `data` as its whole source in one tus PATCH. */
  const upload = async (data: Buffer): Promise<string> => {
    const r = await api('/v1/videos', ['alice', 'uploader'], {
      method: 'POST',
      body: JSON.stringify({ size: data.byteLength }),
    })
    t.equal(r.status, 201)
    const video = (await r.json()) as VideoJson
    const patch = await fetch(`${origin.url}${video.upload!.url}`, {
      method: 'PATCH',
      headers: {
        ...bearer('alice', 'uploader'),
        'tus-resumable': '1.0.0',
        'content-type': 'application/offset+octet-stream',
        'upload-offset': '0',
      },
      body: new Uint8Array(data),
    })
    t.equal(patch.status, 204, 'every byte accepted')
    return video.id
  }
  const settled = (id: string): Promise<VideoJson> =>
    waitFor(
      async () => {
        const v = await getVideo(id)
        return v.status === 'uploading' ? null : v
      },
      { timeoutMs: 60_000, what: `video ${id} out of uploading` },
    )
  const claim = async (): Promise<{ videoId: string } | null> => {
    const r = await api('/v1/jobs/claim', ['fleet', 'worker'], {
      method: 'POST',
      body: JSON.stringify({ workerId: 'w-probe', leaseMs: 30_000 }),
    })
    t.equal(r.status, 200)
    return ((await r.json()) as { job: { videoId: string } | null }).job
  }
  const expectRefused = async (t: Test, data: Buffer, code: string): Promise<void> => {
    const id = await upload(data)
    const v = await settled(id)
    t.equal(v.status, 'failed', 'failed right after the upload')
    t.equal(v.error?.code, code)
    t.notOk(v.error?.message.includes(tmp.dir), 'no server path in the message')
    t.notOk(v.error?.message.includes('/uploads/'), 'no upload path in the message')
    t.equal(await claim(), null, 'nothing queued')
  }

  t.test('random bytes fail with ERR_UPLOAD_NOT_VIDEO and queue nothing', async (t) => {
    await expectRefused(t, randomBytes(64 * 1024), 'ERR_UPLOAD_NOT_VIDEO')
  })

  t.test('a header declaring a 30000x30000 frame is refused without decoding it', async (t) => {
    // ffprobe itself refuses a picture this size (more than INT_MAX/8 bytes): not a readable video.
    await expectRefused(t, y4mDeclaring(30000, 30000), 'ERR_UPLOAD_NOT_VIDEO')
  })

  t.test('a header declaring a 16000x16000 frame is over upload.maxPixels', async (t) => {
    await expectRefused(t, y4mDeclaring(16000, 16000), 'ERR_UPLOAD_TOO_LARGE_FRAME')
  })

  t.test('a small real video is queued and its job can be claimed', async (t) => {
    const clip = makeClip(join(tmp.dir, 'clip.mp4'), { seconds: 1, width: 160, height: 90 })
    const id = await upload(readFileSync(clip))
    const v = await settled(id)
    t.equal(v.status, 'queued')
    t.equal(v.error, null)
    t.equal((await claim())?.videoId, id)
  })
})

t.test('the bounds on frame rate and duration', async (t) => {
  const bounds = { maxPixels: 8192 * 8192, maxFrameRate: 240, maxDurationS: 3600 }
  const stream = (o: object): object => ({
    streams: [{ codec_type: 'video', index: 0, width: 640, height: 360, ...o }],
  })
  t.same(verdictFromProbe({ ...stream({ avg_frame_rate: '30/1' }), format: { duration: '10.0' } }, bounds), {
    videoStreamIndex: 0,
    durationS: 10,
    audioStreams: 0,
    fps: 30,
    isRateMismatch: false,
    containerFrames: null,
  })
  t.match(
    verdictFromProbe({ ...stream({ avg_frame_rate: '30/1', nb_frames: '300' }), format: { duration: '10' } }, bounds),
    { containerFrames: 300 },
    'the frame count the container keeps',
  )
  t.match(
    verdictFromProbe(
      { ...stream({ avg_frame_rate: '27/1', r_frame_rate: '30/1' }), format: { duration: '10' } },
      bounds,
    ),
    { fps: 27, isRateMismatch: true },
    'an average rate off the stream rate: the timestamps leave gaps (a phone file dropping frames)',
  )
  t.match(
    verdictFromProbe(
      { ...stream({ avg_frame_rate: '2997/100', r_frame_rate: '30000/1001' }), format: { duration: '10' } },
      bounds,
    ),
    { isRateMismatch: false },
    'two spellings of NTSC are one rate',
  )
  const withAudio = { streams: [{ codec_type: 'video', index: 0, width: 640, height: 360 }, { codec_type: 'audio' }] }
  t.match(
    verdictFromProbe({ ...withAudio, format: { duration: '10.0' } }, bounds),
    { audioStreams: 1 },
    'the audio streams are counted (a split video gets an audio job)',
  )
  t.match(verdictFromProbe(stream({ avg_frame_rate: '1000/1' }), bounds), { code: 'ERR_UPLOAD_TOO_HIGH_RATE' })
  t.match(verdictFromProbe({ ...stream({ avg_frame_rate: '30/1' }), format: { duration: '3601' } }, bounds), {
    code: 'ERR_UPLOAD_TOO_LONG',
  })
  t.match(verdictFromProbe({ streams: [{ codec_type: 'audio' }] }, bounds), { code: 'ERR_UPLOAD_NOT_VIDEO' })
  t.match(verdictFromProbe(stream({ width: 8193, height: 8192 }), bounds), { code: 'ERR_UPLOAD_TOO_LARGE_FRAME' })
})

t.test('a variable frame rate is found, so the source is transcoded whole (never split)', async (t) => {
  const tmp = tempDir('vcdn-vfr-')
  t.teardown(tmp.remove)
  /** 6 s at 30 fps, every tenth frame dropped with its timestamp kept (27 frames a second, gaps). */
  const vfr = (name: string): string => {
    const path = join(tmp.dir, name)
    execFileSync('ffmpeg', [
      ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=30', '-t', '6'],
      ...['-vf', "select='not(eq(mod(n,10),3))'", '-fps_mode', 'vfr', '-c:v', 'libx264', '-preset', 'ultrafast'],
      path,
    ])
    return path
  }
  const cfr = (name: string): string => {
    const path = join(tmp.dir, name)
    execFileSync('ffmpeg', [
      ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=30', '-t', '6'],
      ...['-c:v', 'libx264', '-preset', 'ultrafast'],
      path,
    ])
    return path
  }
  const opts = { maxPixels: 8192 * 8192, maxFrameRate: 240, maxDurationS: 3600, probeTimeoutMs: 30_000 }
  const logged: string[] = []
  const probe = (path: string, countFramesAboveS?: number) =>
    probeUpload(path, countFramesAboveS === undefined ? opts : { ...opts, countFramesAboveS }, (d) =>
      logged.push(d.stderr),
    )
  // MP4 keeps the timestamps' rate (30) beside the average (27): the metadata tells.
  t.match(await probe(vfr('vfr.mp4')), { isVideo: true, isVariableFrameRate: true }, 'mp4: by its rates')
  // Matroska says 30/1 for both: only counting the frames tells, for a video that could be split.
  t.match(await probe(vfr('vfr.mkv'), 2), { isVideo: true, isVariableFrameRate: true }, 'mkv: by its frame count')
  t.match(
    await probe(vfr('vfr2.mkv')),
    { isVideo: true, isVariableFrameRate: false },
    'not counted when no split is possible',
  )
  for (const name of ['cfr.mp4', 'cfr.mkv']) {
    t.match(await probe(cfr(name), 2), { isVideo: true, isVariableFrameRate: false }, `${name}: constant`)
  }
  t.same(logged, [], 'no tool reported a problem')

  // A remote source (an S3 multipart upload, through a presigned URL) is never demuxed to count
  // its frames: MP4 keeps its count, Matroska does not (so it cannot be shown constant).
  const files = new Map<string, Buffer>()
  for (const [name, make] of [
    ['r-vfr.mp4', vfr],
    ['r-cfr.mp4', cfr],
    ['r-vfr.mkv', vfr],
    ['r-cfr.mkv', cfr],
  ] as const) {
    files.set(name, readFileSync(make(name)))
  }
  let bytesServed = 0
  const server = createServer((req, res) => {
    const body = files.get((req.url ?? '').slice(1))
    if (body === undefined) return void res.writeHead(404).end()
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
    const start = range === null ? 0 : Number(range[1])
    const end = range === null || range[2] === '' ? body.length - 1 : Math.min(Number(range[2]), body.length - 1)
    const part = body.subarray(start, end + 1)
    bytesServed += part.length
    res.writeHead(range === null ? 200 : 206, {
      'content-length': part.length,
      'accept-ranges': 'bytes',
      ...(range === null ? {} : { 'content-range': `bytes ${start}-${end}/${body.length}` }),
    })
    res.end(req.method === 'HEAD' ? undefined : part)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  const remote = (name: string) =>
    probeUpload(base + name, { ...opts, countFramesAboveS: 2, isRemote: true }, (d) => logged.push(d.stderr))
  t.match(await remote('r-vfr.mp4'), { isVideo: true, isVariableFrameRate: true }, 'remote mp4: by its rates')
  t.match(await remote('r-cfr.mp4'), { isVideo: true, isVariableFrameRate: false }, 'remote mp4: its count is kept')
  t.match(await remote('r-vfr.mkv'), { isVideo: true, isVariableFrameRate: true }, 'remote mkv: no count, whole')
  t.match(
    await remote('r-cfr.mkv'),
    { isVideo: true, isVariableFrameRate: true },
    'remote mkv: not shown constant without demuxing it, so transcoded whole',
  )
  t.ok(bytesServed > 0, 'the probe read the sources over HTTP')
  t.same(logged, [], 'no tool reported a problem')
  t.ok(isFrameCountConstant(3900, 130.021, 30), 'a container 21 ms longer than its video is constant')
  t.notOk(isFrameCountConstant(1080, 40, 30), 'one frame in ten missing is not')
})
