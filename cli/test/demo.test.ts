// `vcdn demo`: the whole tier on one machine ingests a sample through the real upload path,
// prints a signed URL that plays through the edge, and Ctrl-C stops every process it started.
import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { tempDir, VCDN_BIN, waitFor } from '../../shared/testing/index.js'

t.test('vcdn demo ingests a sample, serves it signed, and stops cleanly on SIGINT', async (t) => {
  const tmp = tempDir('vcdn-demo-')
  t.teardown(tmp.remove)
  const demo = spawn(
    process.execPath,
    [VCDN_BIN, 'demo', '--data-dir', join(tmp.dir, 'd'), '--port', '0', '--seconds', '6'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let out = ''
  demo.stdout.on('data', (b: Buffer) => (out += b.toString()))
  demo.stderr.on('data', (b: Buffer) => (out += b.toString()))
  const exited = new Promise<number | null>((r) => demo.once('exit', (code) => r(code)))
  t.teardown(() => {
    if (demo.exitCode === null) demo.kill('SIGKILL')
  })
  const ready = await waitFor(
    () => {
      if (demo.exitCode !== null) throw new Error(`demo exited early:\n${out}`)
      const line = out.split('\n').find((l) => l.startsWith('{"msg":"demo ready"'))
      return line === undefined ? null : (JSON.parse(line) as { videoId: string; hls: string; player: string })
    },
    { timeoutMs: 240_000, what: 'the demo to be ready' },
  )
  t.match(out, /upload \[#+\]/, 'the upload drew a progress bar')
  const master = await fetch(ready.hls)
  t.equal(master.status, 200)
  const text = await master.text()
  t.match(text, /#EXT-X-STREAM-INF:/, 'a master playlist through the edge')
  const rendition = /^([0-9]+p)\/index\.m3u8$/m.exec(text)?.[1]
  t.ok(rendition, 'names a rendition')
  const media = await fetch(ready.hls.replace(/master\.m3u8$/, `${rendition}/index.m3u8`))
  t.equal(media.status, 200)
  const segment = /^(seg_\d+\.m4s)$/m.exec(await media.text())?.[1]
  const seg = await fetch(ready.hls.replace(/master\.m3u8$/, `${rendition}/${segment}`))
  t.equal(seg.status, 200)
  t.ok((await seg.arrayBuffer()).byteLength > 1000, 'a segment plays through the edge')
  const page = await fetch(ready.player)
  t.equal(page.status, 200)
  t.match(await page.text(), /hls\.min\.js/)
  const unsigned = await fetch(ready.hls.replace(/\/t\/[^/]+/, ''))
  t.equal(unsigned.status, 403, 'the unsigned URL is refused')
  await unsigned.arrayBuffer()

  demo.kill('SIGINT')
  t.equal(await exited, 0, 'Ctrl-C: the demo exits 0')
  // every tier it started is gone: the edge port no longer answers
  await t.rejects(fetch(ready.hls), 'the edge stopped')
})
