// Playback over HTTPS from a website's own page: Debian's chromium, driven by playwright-core,
// opens a page on another origin (http://127.0.0.2) that plays the edge's signed HLS URL with
// hls.js over https://edge.test (a certificate from a test CA). Every media request is
// cross-origin, so CORS is on the way; a request with a CMCD header is preflighted.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { launchChromium, makeTestCa, tempDir } from '../../../shared/testing/index.js'
import { topology } from './topology.js'

const HLS_JS = createRequire(import.meta.url).resolve('hls.js/dist/hls.min.js')

interface PageState {
  ended: boolean
  fatal: string | null
  frames: number
  duration: number
  exposed: { status: number; xCache: string | null; age: string | null } | null
}

t.test('hls.js on another origin plays the edge over HTTPS with CORS', async (t) => {
  const tmp = tempDir('vcdn-https-play-')
  t.teardown(tmp.remove)
  const ca = makeTestCa(tmp.dir)
  const cert = ca.issue(['edge.test'], { isFullChain: true })

  // A 4 s fMP4 HLS rendition, stored where the origin serves it.
  const hlsDir = join(tmp.dir, 'hls')
  execFileSync('mkdir', ['-p', hlsDir])
  execFileSync(
    'ffmpeg',
    [
      ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=duration=4:size=320x240:rate=25'],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '25'],
      ...['-f', 'hls', '-hls_time', '1', '-hls_playlist_type', 'vod', '-hls_segment_type', 'fmp4'],
      ...['-hls_fmp4_init_filename', 'init.mp4', '-hls_segment_filename', 'seg_%05d.m4s', 'index.m3u8'],
    ],
    { cwd: hlsDir, stdio: ['ignore', 'ignore', 'inherit'] },
  )
  const topo = await topology({
    shields: 1,
    edge: { tls: { cert: cert.cert, key: cert.key, listen: { host: '127.0.0.1', port: 0 } } },
  })
  t.teardown(() => topo.close())
  for (const file of readdirSync(hlsDir)) await topo.store.put(`v/pbtls/${file}`, readFileSync(join(hlsDir, file)))
  const tlsPort = topo.edge.tlsPort
  const signed = topo.sign('/v/pbtls/index.m3u8')
  const mediaUrl = `https://edge.test:${tlsPort}${signed}`
  const segUrl = mediaUrl.replace(/index\.m3u8$/, 'seg_00001.m4s')

  // The website: a page and hls.js on http://127.0.0.2.
  const page = `<!doctype html><video muted playsinline></video><script src="/hls.min.js"></script><script>
const state = (window.state = { ended: false, fatal: null, frames: 0, duration: 0, exposed: null })
const v = document.querySelector('video')
const hls = new Hls()
hls.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal) state.fatal = d.type + ' ' + d.details })
hls.loadSource(${JSON.stringify(mediaUrl)})
hls.attachMedia(v)
v.addEventListener('ended', () => {
  state.ended = true
  state.frames = v.getVideoPlaybackQuality().totalVideoFrames
  state.duration = v.duration
})
v.play().catch(() => undefined)
// A CMCD request header makes this a preflighted request; X-Cache and Age are read from script.
fetch(${JSON.stringify(segUrl)}, { headers: { 'CMCD-Request': 'bl=1000' } }).then(
  (r) => r.arrayBuffer().then(() => (state.exposed = { status: r.status, xCache: r.headers.get('x-cache'), age: r.headers.get('age') })),
  (e) => (state.exposed = { status: 0, xCache: String(e), age: null }),
)
</script>`
  const site = createServer((req, res) => {
    if (req.url === '/hls.min.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(HLS_JS))
    else res.writeHead(200, { 'content-type': 'text/html' }).end(page)
  })
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.2', resolve))
  t.teardown(() => new Promise<void>((resolve) => site.close(() => resolve())))
  const siteAddress = site.address()
  const sitePort = typeof siteAddress === 'object' && siteAddress !== null ? siteAddress.port : 0

  // edge.test is the edge; its chain is trusted through the test CA's key, nothing else.
  const browser = await launchChromium([
    '--host-resolver-rules=MAP edge.test 127.0.0.1',
    `--ignore-certificate-errors-spki-list=${ca.spkiSha256}`,
  ])
  t.teardown(() => browser.close())
  const tab = await browser.newPage()
  const corsErrors: string[] = []
  tab.on('console', (m) => {
    if (m.type() === 'error') corsErrors.push(m.text())
  })
  await tab.goto(`http://127.0.0.2:${sitePort}/`)
  const settled = await tab
    .waitForFunction(
      () => {
        const s = (window as unknown as { state?: PageState }).state
        return s !== undefined && (s.ended || s.fatal !== null) && s.exposed !== null
      },
      undefined,
      { timeout: 90_000, polling: 250 },
    )
    .then(
      () => true,
      () => false,
    )
  const state = await tab.evaluate(() => (window as unknown as { state: PageState }).state)
  t.ok(settled, `the player ended or failed within 90 s (${JSON.stringify(state)} ${JSON.stringify(corsErrors)})`)
  t.equal(state.fatal, null, 'no fatal player error')
  t.equal(state.ended, true, 'played to the end')
  t.ok(state.duration > 3 && state.duration < 5, `duration ${state.duration}`)
  t.ok(state.frames > 50, `frames were decoded (${state.frames})`)
  t.same(corsErrors, [], 'no CORS or certificate errors in the console')
  // Fetch sends a request with a CMCD header only after a successful preflight (Chromium answers
  // the page with a network error otherwise, status 0 here).
  t.equal(state.exposed?.status, 200, 'the preflighted request (a CMCD header) succeeded')
  t.match(state.exposed?.xCache, /HIT|MISS/, 'X-Cache is readable by the page (exposed)')
})
