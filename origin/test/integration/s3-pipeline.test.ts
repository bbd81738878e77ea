// The whole pipeline with `store.kind = "s3"` against a real S3 server (SeaweedFS on loopback),
// origin and transcoder from dist/: a tus upload lands as the source object in the bucket, the
// transcoder fetches the source and writes its outputs with presigned requests straight to the
// bucket (docs/architecture.md §8), and the origin's content server serves them from there.
import t from 'tap'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import {
  makeClip,
  metric,
  startFullStack,
  s3Bucket,
  startS3Server,
  STACK_SECRET,
  tempDir,
  type S3Server,
} from '../../../shared/testing/index.js'

let server: S3Server
t.before(async () => {
  server = await startS3Server()
})
t.teardown(async () => {
  await server?.stop()
})

async function bytesOf(body: NodeJS.ReadableStream | undefined): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of body ?? []) chunks.push(Buffer.from(c as Uint8Array))
  return Buffer.concat(chunks)
}

t.test(
  'upload → transcode → ready with the S3 store; outputs go to the bucket without crossing the origin',
  async (t) => {
    const tmp = tempDir('vcdn-s3-pipeline-')
    t.teardown(tmp.remove)
    const { s3, bucket } = await s3Bucket(server, 'pipeline')
    t.teardown(() => bucket.close())
    const stack = await startFullStack({
      dir: tmp.dir,
      origin: { store: { kind: 's3', s3 } },
      transcoder: { preset: 'ultrafast' },
    })
    t.teardown(() => stack.close())

    const clip = makeClip(join(tmp.dir, 'clip.mp4'), { seconds: 4, width: 320, height: 240 })
    const clipBytes = readFileSync(clip)
    const id = await stack.upload(clip)
    const video = await stack.settle(id, 180_000)
    t.equal(video.status, 'ready', `transcoded (${JSON.stringify(video.error)})`)

    const source = await bucket.get(`sources/${id}/source`)
    t.ok(source !== null, 'the tus upload is the source object in the bucket')
    t.ok((await bytesOf(source?.body)).equals(clipBytes), 'byte-identical to the uploaded file')

    const outputs = await bucket.list(`v/${id}/`)
    const outputBytes = outputs.reduce((sum, o) => sum + o.size, 0)
    t.ok(
      outputs.some((o) => o.key === `v/${id}/master.m3u8`),
      'the master playlist is in the bucket',
    )
    t.ok(outputBytes > 100_000, `outputs in the bucket (${outputs.length} objects, ${outputBytes} bytes)`)
    // The origin read the tus bytes and small JSON bodies, none of the outputs.
    const received = await metric(stack.origin.adminUrl, 'vcdn_origin_received_bytes_total')
    t.ok(received >= statSync(clip).size, `received ${received}: the upload crossed the origin`)
    t.ok(received - statSync(clip).size < 64 * 1024, `received ${received}: no output bytes crossed the origin`)

    const auth = { 'x-vcdn-tier': STACK_SECRET }
    const master = await fetch(`${stack.origin.url}/v/${id}/master.m3u8`, { headers: auth })
    t.equal(master.status, 200)
    const masterText = await master.text()
    t.equal(masterText, (await bytesOf((await bucket.get(`v/${id}/master.m3u8`))?.body)).toString('utf8'))
    const rendition = video.renditions[0]?.name ?? ''
    t.match(masterText, `${rendition}/`)
    const segKey = `v/${id}/${rendition}/seg_00001.m4s`
    const seg = await fetch(`${stack.origin.url}/${segKey}`, { headers: auth })
    t.equal(seg.status, 200)
    t.equal(seg.headers.get('content-type'), 'video/iso.segment')
    t.ok(Buffer.from(await seg.arrayBuffer()).equals(await bytesOf((await bucket.get(segKey))?.body)))
  },
)
