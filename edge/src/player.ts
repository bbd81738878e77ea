// The demo player page: `/t/{token}/v/{id}/player.html` is an hls.js page that loads `master.m3u8`
// by a RELATIVE URI, so the token directory carries over to every playlist and segment
// (docs/architecture.md §3) exactly as it would for any other player. hls.js itself is served from
// `/_vcdn/hls.min.js` (a public library, no token needed).
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { IncomingRequest, ResponseSink } from '../../shared/http/index.js'
import { isVideoId, parseContentPath } from '../../shared/namespace/index.js'

export const PLAYER_SCRIPT_PATH = '/_vcdn/hls.min.js'
const PLAYER_PAGE_FILE = 'player.html'
const PLAYER_PAGE_SUFFIX = `/${PLAYER_PAGE_FILE}`

let script: Buffer | null = null
function hlsScript(): Buffer {
  // Read once, lazily: edges that never serve the page never pay for it.
  script ??= readFileSync(createRequire(import.meta.url).resolve('hls.js/dist/hls.min.js'))
  return script
}

/** The video id of a player page path `/v/{id}/player.html`, or null for any other path. */
function playerPageVideoId(path: string): string | null {
  // Every request asks; the suffix check spares the parse for all but the page itself.
  if (!path.endsWith(PLAYER_PAGE_SUFFIX)) return null
  const parts = parseContentPath(path)
  return parts !== null && parts.file === PLAYER_PAGE_FILE && isVideoId(parts.videoId) ? parts.videoId : null
}

/**
 * What the edge answers itself (shared/cache-tier ServeLocal), on GET only: hls.js and the player
 * page (its path passed the token check). 0 for everything else, which goes to the cache.
 */
export function serveLocal(path: string, req: IncomingRequest, res: ResponseSink): number {
  if (req.method !== 'GET') return 0
  if (path === PLAYER_SCRIPT_PATH) return sendPlayerScript(res)
  const videoId = playerPageVideoId(path)
  return videoId === null ? 0 : sendPlayerPage(res, videoId)
}

function sendPlayerScript(res: ResponseSink): number {
  const body = hlsScript()
  res.start(
    200,
    { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=86400' },
    body.length,
  )
  res.end(body)
  return 200
}

function sendPlayerPage(res: ResponseSink, videoId: string): number {
  const body = Buffer.from(page(videoId))
  res.start(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }, body.length)
  res.end(body)
  return 200
}

function page(videoId: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vcdn · ${videoId}</title>
<style>body{margin:0;background:#111;color:#ddd;font:14px system-ui}video{width:100%;max-height:90vh;background:#000}p{padding:0 1em}</style>
</head>
<body>
<video id="video" controls muted playsinline autoplay></video>
<p id="status">loading…</p>
<script src="${PLAYER_SCRIPT_PATH}"></script>
<script>
  const video = document.getElementById('video')
  const status = document.getElementById('status')
  // State for people and for the playback test: errors, levels, ended.
  const state = (window.vcdnPlayer = { errors: [], levels: 0, ended: false, fatal: false })
  const show = (text) => (status.textContent = text)
  video.addEventListener('ended', () => { state.ended = true; show('ended') })
  video.addEventListener('playing', () => show('playing'))
  if (window.Hls && Hls.isSupported()) {
    // CMCD (CTA-5004) as the CMCD= query parameter: the edge logs the session and prefetches nor.
    const hls = new Hls({ cmcd: {} })
    hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => { state.levels = data.levels.length; video.play().catch(() => {}) })
    hls.on(Hls.Events.ERROR, (_e, data) => {
      state.errors.push({ type: data.type, details: data.details, fatal: !!data.fatal })
      if (data.fatal) { state.fatal = true; show('error: ' + data.details) }
    })
    hls.loadSource('master.m3u8')
    hls.attachMedia(video)
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = 'master.m3u8'
  } else {
    show('this browser cannot play HLS')
  }
</script>
</body>
</html>
`
}
