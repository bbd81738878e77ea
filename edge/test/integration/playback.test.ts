// Playback by a real player: Debian's chromium, driven by playwright-core, plays an uploaded and
// transcoded video with hls.js through edge → shield → origin on the signed URL, to the end, and
// the DASH MPD of the same segments with dash.js. The player page turns CMCD on (CTA-5004, the
// CMCD= query key): the edge's access log carries the session id hls.js sent.
import t from 'tap'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { Request } from 'playwright-core'
import { launchChromium, makeClip, metric, startFullStack, tempDir, waitFor } from '../../../shared/testing/index.js'

// dash.js's browser bundle (its package exports only the ESM build; the UMD one sets window.dashjs).
const DASHJS = join(dirname(createRequire(import.meta.url).resolve('dashjs')), '..', 'umd', 'dash.all.min.js')

interface PlayerState {
  errors: { type: string; details: string; fatal: boolean }[]
  levels: number
  ended: boolean
  fatal: boolean
}

t.test('a real browser plays the video through the tier, and a tampered token fails', async (t) => {
  const tmp = tempDir('vcdn-play-')
  t.teardown(tmp.remove)
  const stack = await startFullStack({ dir: tmp.dir, transcoder: { preset: 'ultrafast' }, edge: { accessLog: true } })
  t.teardown(() => stack.close())
  const clip = makeClip(join(tmp.dir, 'clip.mp4'), { seconds: 8, width: 640, height: 360 })
  const id = await stack.upload(clip)
  const video = await stack.settle(id, 180_000)
  t.equal(video.status, 'ready', `transcoded (${JSON.stringify(video.error)})`)
  const hls = video.playback?.hls ?? ''
  t.match(hls, /^http:\/\/127\.0\.0\.1:\d+\/t\/[^/]+\/v\/[^/]+\/master\.m3u8$/, 'signed edge URL')

  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  const consoleErrors: string[] = []
  page.on('pageerror', (e) => consoleErrors.push(e.message))
  // What the page fetched, for the message of a stall: requests still open, failed, or non-2xx.
  const open = new Map<Request, number>()
  const failed: string[] = []
  // The CMCD session ids hls.js sent (CTA-5004 §3: sid in the CMCD= query, URL-encoded).
  const sentSids = new Set<string>()
  page.on('request', (r) => {
    open.set(r, Date.now())
    const sid = /(?:^|,)sid="([^"]+)"/.exec(new URL(r.url()).searchParams.get('CMCD') ?? '')?.[1]
    if (sid !== undefined) sentSids.add(sid)
  })
  page.on('requestfinished', (r) => {
    open.delete(r)
    // The browser may close before the response is read (teardown): that is no failure of the
    // tier, and an unhandled rejection would fail the file.
    r.response().then(
      (res) => {
        if (res !== null && res.status() >= 400) failed.push(`${res.status()} ${r.url()}`)
      },
      () => undefined,
    )
  })
  page.on('requestfailed', (r) => {
    open.delete(r)
    failed.push(`${r.failure()?.errorText ?? 'failed'} ${r.url()}`)
  })
  const network = (): string =>
    JSON.stringify({
      open: [...open].map(([r, at]) => `${r.url()} (open ${Date.now() - at} ms)`),
      failed,
    })

  const player = hls.replace(/master\.m3u8$/, 'player.html')
  const response = await page.goto(player)
  t.equal(response?.status(), 200, 'the player page is served under the token')
  const settled = await page
    .waitForFunction(
      () => {
        const s = (window as unknown as { vcdnPlayer?: PlayerState }).vcdnPlayer
        return s !== undefined && (s.ended || s.fatal)
      },
      undefined,
      { timeout: 90_000, polling: 250 },
    )
    .then(
      () => true,
      () => false,
    )
  const state = await page.evaluate(() => {
    const v = document.querySelector('video') as HTMLVideoElement
    const q = v.getVideoPlaybackQuality()
    const buffered: string[] = []
    for (let i = 0; i < v.buffered.length; i++) buffered.push(`${v.buffered.start(i)}-${v.buffered.end(i)}`)
    return {
      player: (window as unknown as { vcdnPlayer: PlayerState }).vcdnPlayer,
      currentTime: v.currentTime,
      duration: v.duration,
      frames: q.totalVideoFrames,
      dropped: q.droppedVideoFrames,
      media: { paused: v.paused, readyState: v.readyState, networkState: v.networkState, buffered },
    }
  })
  t.ok(settled, `the player ended or failed within 90 s (${JSON.stringify(state)} ${network()})`)
  t.equal(state.player.fatal, false, `no fatal player error (${JSON.stringify(state.player.errors)})`)
  t.equal(state.player.ended, true, 'played to the end')
  t.ok(state.player.levels >= 2, `hls.js saw the ladder (${state.player.levels} levels)`)
  t.ok(state.duration > 7 && state.duration < 9, `duration ${state.duration}`)
  t.ok(state.currentTime >= state.duration - 0.5, `reached the end (${state.currentTime})`)
  t.ok(state.frames > 100, `frames were decoded (${state.frames})`)
  t.same(consoleErrors, [], 'no page errors')
  t.ok((await metric(stack.edge.adminUrl, 'vcdn_edge_cache_misses_total')) > 0, 'segments came through the edge')

  // CMCD end to end: hls.js sent one session id, and the edge logged it on its access lines.
  t.equal(sentSids.size, 1, `hls.js sent one CMCD session id (${[...sentSids].join(' ')})`)
  const [sid] = sentSids
  // The edge's stdout reaches this process asynchronously: wait for the line (deadline).
  const sidOf = (line: string): unknown => {
    try {
      return (JSON.parse(line) as { cmcd?: { sid?: unknown } }).cmcd?.sid
    } catch {
      return undefined // the last line may still be arriving
    }
  }
  const isLogged = (): boolean =>
    stack.edge
      .output()
      .split('\n')
      .some((l) => l.includes('"access":true') && sidOf(l) === sid)
  const logged = await waitFor(isLogged, { timeoutMs: 30_000, what: 'an access line with the CMCD sid' }).then(
    () => true,
    () => false,
  )
  t.ok(sid !== undefined && logged, `the edge's access log carries sid ${sid ?? '(none)'}`)

  // The DASH MPD over the same CMAF segments, played by dash.js on the same signed path.
  const dash = video.playback?.dash ?? ''
  t.match(dash, /^http:\/\/127\.0\.0\.1:\d+\/t\/[^/]+\/v\/[^/]+\/manifest\.mpd$/, 'signed DASH URL')
  await page.goto(player) // any page of the edge's origin; dash.js is added to it below
  await page.addScriptTag({ path: DASHJS })
  const dashState = await page.evaluate(
    (url) =>
      new Promise<{ ended: boolean; errors: string[]; frames: number; duration: number; currentTime: number }>(
        (resolve) => {
          type DashPlayer = {
            initialize(v: HTMLVideoElement, url: string, autoPlay: boolean): void
            on(e: string, cb: (e: { error?: { code?: number; message?: string } }) => void): void
          }
          const dashjs = (window as unknown as { dashjs: { MediaPlayer(): { create(): DashPlayer } } }).dashjs
          document.querySelectorAll('video').forEach((v) => v.pause())
          const v = document.createElement('video')
          v.muted = true
          document.body.appendChild(v)
          const errors: string[] = []
          const finish = (ended: boolean): void => {
            const q = v.getVideoPlaybackQuality()
            resolve({ ended, errors, frames: q.totalVideoFrames, duration: v.duration, currentTime: v.currentTime })
          }
          const p = dashjs.MediaPlayer().create()
          p.on('error', (e) => {
            errors.push(`${e.error?.code ?? '?'} ${e.error?.message ?? ''}`)
            finish(false)
          })
          v.addEventListener('ended', () => finish(true))
          p.initialize(v, url, true)
        },
      ),
    dash,
  )
  t.same(dashState.errors, [], 'no dash.js errors')
  t.equal(dashState.ended, true, 'dash.js played to the end')
  t.ok(dashState.duration > 7 && dashState.duration < 9, `DASH duration ${dashState.duration}`)
  t.ok(dashState.frames > 100, `DASH frames were decoded (${dashState.frames})`)

  // A tampered token: the page itself is refused, and hls.js on a tampered master URL fails.
  const tampered = player.replace(
    /\/t\/([^/]+)\//,
    (_m, tok: string) => `/t/${tok.slice(0, -2)}${tok.endsWith('AA') ? 'BB' : 'AA'}/`,
  )
  const refused = await page.goto(tampered)
  t.equal(refused?.status(), 403, 'tampered token refused')
  t.match(await refused?.text(), /ERR_TOKEN_SIGNATURE/)
  await page.goto(player)
  const badMaster = tampered.replace(/player\.html$/, 'master.m3u8')
  const failure = await page.evaluate(
    (url) =>
      new Promise<{ fatal: boolean; details: string; code: number | undefined }>((resolve) => {
        type HlsInstance = {
          loadSource(u: string): void
          attachMedia(v: HTMLVideoElement): void
          on(
            e: string,
            cb: (e: unknown, d: { fatal: boolean; details: string; response?: { code: number } }) => void,
          ): void
        }
        const HlsCtor = (window as unknown as { Hls: { new (): HlsInstance; Events: { ERROR: string } } }).Hls
        const h = new HlsCtor()
        const v = document.createElement('video')
        h.on(HlsCtor.Events.ERROR, (_e, d) => {
          if (d.fatal) resolve({ fatal: d.fatal, details: d.details, code: d.response?.code })
        })
        h.loadSource(url)
        h.attachMedia(v)
      }),
    badMaster,
  )
  t.equal(failure.fatal, true, 'playback fails')
  t.equal(failure.code, 403, `the edge answered 403 (${failure.details})`)
})
