// The scale-out column of docs/architecture.md §9 all at once: the origin's objects in an S3 bucket
// (SeaweedFS on loopback, SigV4 checked) and its jobs on Kafka (a single-node KRaft broker), two
// transcoders in one consumer group. An upload becomes ready and plays through edge → shield →
// origin from the bucket; a long upload, sent in parts straight to the bucket, is split into chunk
// jobs and a stitch on the Kafka bus (§8), and the video view records who took each chunk. Never skipped: a server that cannot start
// fails the test.
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import {
  VCDN_BIN,
  makeClip,
  startFullStack,
  kafkaBusConfig,
  startKafkaBroker,
  s3Bucket,
  startS3Server,
  tempDir,
  type FullStack,
} from '../../../shared/testing/index.js'

const execFileAsync = promisify(execFile)
const SETTLE_MS = 300_000
// Two servers, the stack, a group of two and a split encode on a busy 2-core machine. Both calls
// are needed: setTimeout moves this process's own timer, the `# timeout=` comment the runner's.
const FILE_TIMEOUT_MS = 900_000
t.setTimeout(FILE_TIMEOUT_MS)
t.comment(`timeout=${FILE_TIMEOUT_MS}`)

async function fetchText(url: string): Promise<{ status: number; text: string }> {
  const r = await fetch(url)
  return { status: r.status, text: await r.text() }
}

/** master → first variant → first segment through the edge, on the signed URL the API hands out. */
async function playFirstSegment(t: Test, hls: string): Promise<void> {
  const master = await fetchText(hls)
  t.equal(master.status, 200, 'master playlist through the edge')
  const variant = master.text.split('\n').find((l) => l !== '' && !l.startsWith('#')) ?? ''
  const media = await fetchText(new URL(variant, hls).href)
  t.equal(media.status, 200, 'media playlist')
  const segment = media.text.split('\n').find((l) => l !== '' && !l.startsWith('#')) ?? ''
  const seg = await fetch(new URL(segment, new URL(variant, hls)).href)
  t.equal(seg.status, 200, 'a segment')
  t.ok((await seg.arrayBuffer()).byteLength > 0, 'with bytes')
}

t.test('S3 store and Kafka bus together, two transcoders in the group', async (t) => {
  const tmp = tempDir('vcdn-scale-out-')
  t.teardown(tmp.remove)
  // Both start at once; whichever started is stopped even when the other fails (a server left
  // running kept this file alive until its 900 s timeout).
  const [s3Started, brokerStarted] = await Promise.allSettled([startS3Server(), startKafkaBroker()])
  if (s3Started.status === 'fulfilled') t.teardown(() => s3Started.value.stop())
  if (brokerStarted.status === 'fulfilled') t.teardown(() => brokerStarted.value.close())
  if (s3Started.status === 'rejected') throw s3Started.reason
  if (brokerStarted.status === 'rejected') throw brokerStarted.reason
  const [s3Server, broker] = [s3Started.value, brokerStarted.value]
  const { s3, bucket } = await s3Bucket(s3Server, 'scale-out')
  t.teardown(() => bucket.close())
  const bus = kafkaBusConfig(broker, 's')
  const stack: FullStack = await startFullStack({
    dir: tmp.dir,
    // joining the group and creating the topics come before the listening line
    startTimeoutMs: 90_000,
    transcoders: 0,
    transcoder: { preset: 'ultrafast', bus },
    // splitAboveS 12 and chunkS 8: the 4 s clip is encoded whole, the 20 s one as 3 chunks, an audio
    // job and a stitch.
    origin: { bus, store: { kind: 's3', s3 }, transcode: { splitAboveS: 12, chunkS: 8 } },
  })
  t.teardown(() => stack.close())
  await stack.startTranscoder()
  await stack.startTranscoder()
  const small = makeClip(join(tmp.dir, 'small.mp4'), { seconds: 4, width: 320, height: 240 })
  const long = makeClip(join(tmp.dir, 'long.mp4'), { seconds: 20, width: 320, height: 240 })

  t.test('an upload becomes ready and plays through the edge from the bucket', async (t) => {
    const id = await stack.upload(small)
    const v = await stack.settle(id, SETTLE_MS)
    t.equal(v.status, 'ready', `ready (${JSON.stringify(v.error)})`)
    t.ok(await bucket.head(`v/${id}/master.m3u8`), 'the master playlist is in the bucket')
    await playFirstSegment(t, v.playback?.hls ?? '')
  })

  t.test(
    'a long upload in parts straight to the bucket is split into chunk jobs and stitched on the Kafka bus',
    async (t) => {
      // `vcdn upload` takes the S3 multipart offer: the probe reads the source through a presigned
      // URL, and its length decides the split as for a tus upload.
      const uploaded = await execFileAsync(
        process.execPath,
        [VCDN_BIN, 'upload', long, '--origin', stack.origin.url, '--token', stack.uploaderToken],
        { timeout: 120_000, env: { ...process.env, XDG_STATE_HOME: join(tmp.dir, 'state') } },
      )
      const id = uploaded.stdout.trim()
      t.match(
        stack.origin.output(),
        new RegExp(`"videoId":"${id}"[^\n]*"direct upload complete, transcode queued"`),
        'uploaded in parts to the bucket',
      )
      const v = await stack.settle(id, SETTLE_MS)
      t.equal(v.status, 'ready', `ready (${JSON.stringify(v.error)})`)
      const view = (
        await stack.api<{
          processing: {
            chunks: { done: number; total: number; claims: number[] }
            audio: { done: boolean; claims: number } | null
            workers: string[]
          }
        }>('GET', `/v1/videos/${id}`)
      ).body
      t.same(
        { done: view.processing.chunks.done, total: view.processing.chunks.total },
        { done: 3, total: 3 },
        'three chunks, all done',
      )
      t.ok(
        view.processing.chunks.claims.every((n) => n >= 1),
        `every chunk's claim recorded (${view.processing.chunks.claims.join(', ')})`,
      )
      t.ok(view.processing.workers.length >= 1, `taken by ${view.processing.workers.join(', ')}`)
      t.match(view.processing.audio, { done: true }, 'the audio job (keyed <videoId>/audio) ran on the Kafka bus too')
      t.ok((view.processing.audio?.claims ?? 0) >= 1, 'its claim recorded')
      t.same(await bucket.list(`work/${id}/`), [], 'the chunks and the audio are removed once published')
      await playFirstSegment(t, v.playback?.hls ?? '')
    },
  )
})
