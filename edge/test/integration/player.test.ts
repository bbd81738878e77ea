// The player page the edge serves (docs/architecture.md §3): a quality menu from hls.js levels, the
// poster, seek-bar thumbnails from thumbs/thumbs.vtt, a page for people when the link is refused,
// no 403 for the favicon, and HEAD for the page and hls.js. Files are put into the store directly.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { launchChromium, metric, tempDir, waitFor } from '../../../shared/testing/index.js'
import { signToken } from '../../../shared/token/index.js'
import { KEYS, topology } from './topology.js'

interface PlayerState {
  levels: number
  fatal: boolean
  qualities: string[]
  poster: string | null
  thumbCues: number
  thumbShown: { url: string; x: number; y: number; w: number; h: number } | null
}

const ffmpeg = (cwd: string, args: string[]): void => {
  execFileSync('ffmpeg', ['-v', 'error', '-y', ...args], { cwd, stdio: ['ignore', 'ignore', 'inherit'] })
}

t.test('the player page', async (t) => {
  const tmp = tempDir('vcdn-player-')
  t.teardown(tmp.remove)
  const dir = tmp.dir
  // One 2 s fMP4 rendition, listed twice in the multivariant playlist as two levels.
  ffmpeg(dir, [
    ...['-f', 'lavfi', '-i', 'testsrc=duration=2:size=160x120:rate=25'],
    ...['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '25'],
    ...['-f', 'hls', '-hls_time', '1', '-hls_playlist_type', 'vod', '-hls_segment_type', 'fmp4'],
    ...['-hls_fmp4_init_filename', 'init.mp4', '-hls_segment_filename', 'seg_%05d.m4s', 'index.m3u8'],
  ])
  ffmpeg(dir, ['-f', 'lavfi', '-i', 'testsrc=size=160x120', '-frames:v', '1', 'poster.jpg'])
  ffmpeg(dir, ['-f', 'lavfi', '-i', 'testsrc=size=160x45', '-frames:v', '1', 'sprite_000.jpg'])
  const topo = await topology({ shields: 1, edge: { accessLog: true } })
  t.teardown(() => topo.close())
  for (const file of readdirSync(dir).filter((f) => /\.(m3u8|m4s|mp4)$/.test(f))) {
    for (const level of ['240p', '120p']) await topo.store.put(`v/pl1/${level}/${file}`, readFileSync(join(dir, file)))
  }
  const master = [
    '#EXTM3U',
    '#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=320x240',
    '240p/index.m3u8',
    '#EXT-X-STREAM-INF:BANDWIDTH=200000,RESOLUTION=160x120',
    '120p/index.m3u8',
    '',
  ].join('\n')
  await topo.store.put('v/pl1/master.m3u8', Buffer.from(master))
  await topo.store.put('v/pl1/thumbs/poster.jpg', readFileSync(join(dir, 'poster.jpg')))
  await topo.store.put('v/pl1/thumbs/sprite_000.jpg', readFileSync(join(dir, 'sprite_000.jpg')))
  const vtt = [
    'WEBVTT',
    '',
    '00:00:00.000 --> 00:00:01.000',
    'sprite_000.jpg#xywh=0,0,80,45',
    '',
    '00:00:01.000 --> 00:00:02.000',
    'sprite_000.jpg#xywh=80,0,80,45',
    '',
  ].join('\n')
  await topo.store.put('v/pl1/thumbs/thumbs.vtt', Buffer.from(vtt))
  const pageUrl = `${topo.edge.url}${topo.sign('/v/pl1/player.html')}`

  t.test('lists the levels, sets the poster and shows a thumbnail over the seek bar', async (t) => {
    const browser = await launchChromium()
    t.teardown(() => browser.close())
    const tab = await browser.newPage()
    await tab.goto(pageUrl)
    const ready = await tab
      .waitForFunction(
        () => {
          const s = (window as unknown as { vcdnPlayer?: PlayerState }).vcdnPlayer
          return s !== undefined && s.levels > 0 && s.poster !== null && s.thumbCues > 0
        },
        undefined,
        { timeout: 60_000, polling: 100 },
      )
      .then(
        () => true,
        () => false,
      )
    const state = await tab.evaluate(() => (window as unknown as { vcdnPlayer: PlayerState }).vcdnPlayer)
    t.ok(ready, `the page loaded the levels, poster and thumbnails (${JSON.stringify(state)})`)
    t.equal(state.levels, 2)
    t.same(
      state.qualities,
      ['Auto', '120p · 200 kb/s', '240p · 400 kb/s'],
      'the quality menu: Auto and the levels (hls.js orders them by bitrate)',
    )
    t.same(
      await tab.$$eval('#quality option', (os) => os.map((o) => o.textContent)),
      state.qualities,
      'the menu shows them',
    )
    t.match(state.poster, /\/thumbs\/poster\.jpg$/, 'the poster is set')
    t.equal(await tab.$eval('video', (v) => v.poster), state.poster)
    t.equal(state.thumbCues, 2, 'both VTT cues parsed')
    // The seek bar's range is the duration; hover its last quarter (the second cue).
    await tab.waitForFunction(() => Number((document.getElementById('seek') as HTMLInputElement).max) > 1, undefined, {
      timeout: 60_000,
    })
    const box = await tab.$eval('#seek', (e) => {
      const r = e.getBoundingClientRect()
      return { x: r.left, y: r.top, w: r.width, h: r.height }
    })
    await tab.mouse.move(box.x + box.w * 0.1, box.y + box.h / 2)
    await tab.mouse.move(box.x + box.w * 0.9, box.y + box.h / 2)
    const shown = await tab.evaluate(() => (window as unknown as { vcdnPlayer: PlayerState }).vcdnPlayer.thumbShown)
    t.match(shown, { x: 80, y: 0, w: 80, h: 45 }, 'the second cue is shown')
    t.match(shown?.url, /\/thumbs\/sprite_000\.jpg$/, 'the sprite URI is relative to the VTT')
    t.equal(await tab.$eval('#thumb', (e) => (e as HTMLElement).style.display), 'block', 'the box is visible')
    const sprite = await fetch(shown?.url ?? '')
    t.equal(sprite.status, 200, 'the sprite is served under the same token')
    await sprite.arrayBuffer()
  })

  t.test('an expired token gives a page for people with the code, and JSON to others', async (t) => {
    const expired = signToken({ exp: Math.floor(Date.now() / 1000) - 10, acl: '/v/pl1/', kid: 'k1' }, KEYS)
    const url = `${topo.edge.url}/t/${expired}/v/pl1/player.html`
    const refused = (): Promise<number> =>
      metric(topo.edge.adminUrl, 'vcdn_edge_refused_total{code="ERR_TOKEN_EXPIRED"}')
    const refusedBefore = await refused()
    const html = await fetch(url, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } })
    t.equal(html.status, 403)
    t.match(html.headers.get('content-type'), /^text\/html/)
    const text = await html.text()
    t.match(text, /expired/)
    t.match(text, /ERR_TOKEN_EXPIRED/)
    // The page for people is still a refusal of the front door: counted, and its access line has the code.
    t.equal((await refused()) - refusedBefore, 1, 'the HTML refusal is counted in refused_total')
    const line = await waitFor(
      () =>
        topo.edge
          .output()
          .split('\n')
          .find((l) => l.includes('"access":true') && l.includes('player.html') && l.includes('"status":403')),
      { timeoutMs: 30_000, what: "the refused page's access line" },
    )
    t.match(JSON.parse(line), { status: 403, code: 'ERR_TOKEN_EXPIRED' }, 'the access line carries the code')
    const json = await fetch(url, { headers: { accept: 'application/json' } })
    t.equal(json.status, 403)
    t.match(json.headers.get('content-type'), /^application\/json/)
    t.match(await json.json(), { error: { code: 'ERR_TOKEN_EXPIRED' } })
    const media = await fetch(url.replace('player.html', 'master.m3u8'), { headers: { accept: 'text/html' } })
    t.equal(media.status, 403)
    t.match(media.headers.get('content-type'), /^application\/json/, 'media refusals stay JSON')
    await media.arrayBuffer()
  })

  t.test('favicon.ico is not refused', async (t) => {
    const r = await fetch(`${topo.edge.url}/favicon.ico`)
    t.equal(r.status, 204)
    await r.arrayBuffer()
  })

  t.test('HEAD on the page and on hls.js answers as GET without a body', async (t) => {
    for (const url of [pageUrl, `${topo.edge.url}/_vcdn/hls.min.js`]) {
      const get = await fetch(url)
      const body = await get.arrayBuffer()
      const head = await fetch(url, { method: 'HEAD' })
      t.equal(head.status, 200, url)
      t.equal(head.headers.get('content-type'), get.headers.get('content-type'))
      t.equal(head.headers.get('content-length'), String(body.byteLength))
      t.equal((await head.arrayBuffer()).byteLength, 0, 'no body')
    }
  })
})
