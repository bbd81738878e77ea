// The demo player page: `/t/{token}/v/{id}/player.html` is an hls.js page that loads `master.m3u8`
// by a RELATIVE URI, so the token directory carries over to every playlist and segment
// (docs/architecture.md §3) exactly as it would for any other player. hls.js itself is served from
// `/_vcdn/hls.min.js` (a public library, no token needed).
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { IncomingRequest, ResponseSink } from '../../shared/http/index.js'
import { ERRORS, type ErrorCode, type VcdnError } from '../../shared/errors/index.js'
import { isVideoId, parseContentPath } from '../../shared/namespace/index.js'

export const PLAYER_SCRIPT_PATH = '/_vcdn/hls.min.js'
/** Browsers ask for it on every page; answered 204 without a token, never a 403. */
export const FAVICON_PATH = '/favicon.ico'
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
 * The tier's renderRefusal (shared/cache-tier RenderRefusal): a refused request for the player page
 * itself that accepts text/html gets a short page for people with the code (same status) instead of
 * JSON; the tier has counted the refusal and named its code in the access line already. Every other
 * refusal (media, scripts, Accept: application/json) stays coded JSON (0).
 */
export function renderRefusal(req: IncomingRequest, err: VcdnError, res: ResponseSink): number {
  if (req.method !== 'GET' && req.method !== 'HEAD') return 0
  if (!req.path.endsWith(PLAYER_PAGE_SUFFIX) || !(req.header('accept') ?? '').includes('text/html')) return 0
  return sendRefusedPage(res, err.code)
}

/**
 * What the edge answers itself (shared/cache-tier ServeLocal), on GET and HEAD (RFC 9110 §9.3.2:
 * the same headers, no body): hls.js, the favicon and the player page (its path passed the token
 * check). 0 for everything else, which goes to the cache.
 */
export function serveLocal(path: string, req: IncomingRequest, res: ResponseSink): number {
  if (req.method !== 'GET' && req.method !== 'HEAD') return 0
  if (path === PLAYER_SCRIPT_PATH) return sendPlayerScript(res)
  if (path === FAVICON_PATH) return sendNoFavicon(res)
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

function sendNoFavicon(res: ResponseSink): number {
  res.start(204, { 'cache-control': 'public, max-age=86400' }, 0)
  res.end()
  return 204
}

function sendRefusedPage(res: ResponseSink, code: ErrorCode): number {
  const { status, message } = ERRORS[code]
  // Every playback-token refusal is a 403 (the edge's page meets no other 403 code).
  const text = status === 403 ? 'This video link has expired or is not valid here.' : message
  const body = Buffer.from(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vcdn · cannot play</title>
<style>body{background:#111;color:#ddd;font:16px system-ui;padding:2em}code{color:#aaa}</style></head>
<body><h1>Cannot play this video</h1><p>${escapeHtml(text)}</p><p>Ask for a new link. <code>${escapeHtml(code)}</code></p></body></html>
`)
  res.start(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }, body.length)
  res.end(body)
  return status
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
<title>vcdn · ${escapeHtml(videoId)}</title>
<style>body{margin:0;background:#111;color:#ddd;font:14px system-ui}video{width:100%;max-height:85vh;background:#000}p,#bar{padding:0 1em}#bar{position:relative;display:flex;gap:.5em;align-items:center}#seek{flex:1}#thumb{position:absolute;bottom:2.2em;display:none;border:1px solid #ddd;background-repeat:no-repeat;pointer-events:none}select[hidden]{display:none}</style>
</head>
<body>
<video id="video" controls muted playsinline autoplay></video>
<div id="bar"><input id="seek" type="range" min="0" max="0" step="0.1" value="0" aria-label="seek"><div id="thumb"></div>
<select id="quality" aria-label="quality" hidden></select><select id="audio" aria-label="audio" hidden></select><select id="captions" aria-label="captions" hidden></select></div>
<p id="status">loading…</p>
<script src="${PLAYER_SCRIPT_PATH}"></script>
<script>
  const $ = (id) => document.getElementById(id)
  const video = $('video'), status = $('status'), seek = $('seek'), thumb = $('thumb')
  // State for people and for the tests: errors, levels, menus, poster, thumbnails, ended.
  const state = (window.vcdnPlayer = { errors: [], levels: 0, ended: false, fatal: false, qualities: [], poster: null, thumbCues: 0, thumbShown: null })
  const show = (text) => (status.textContent = text)
  video.addEventListener('ended', () => { state.ended = true; show('ended') })
  video.addEventListener('playing', () => show('playing'))
  // The poster, when the video has one: a failed load removes it.
  const probe = new Image()
  probe.onload = () => { video.poster = probe.src; state.poster = probe.src }
  probe.src = 'thumbs/poster.jpg'
  // A menu of [value, label] pairs; hidden when it has nothing to choose between.
  const menu = (el, items, current, onPick, minItems) => {
    el.replaceChildren(...items.map(([value, label]) => { const o = document.createElement('option'); o.value = String(value); o.textContent = label; return o }))
    el.value = String(current)
    el.hidden = items.length < minItems
    el.onchange = () => onPick(Number(el.value))
  }
  // Seek bar with thumbnail previews from thumbs/thumbs.vtt (WebVTT cues naming sprite#xywh=x,y,w,h).
  video.addEventListener('durationchange', () => (seek.max = String(video.duration || 0)))
  video.addEventListener('timeupdate', () => (seek.value = String(video.currentTime)))
  seek.addEventListener('input', () => (video.currentTime = Number(seek.value)))
  let cues = []
  const seconds = (t) => t.split(':').reduce((s, p) => s * 60 + Number(p), 0)
  fetch('thumbs/thumbs.vtt').then((r) => (r.ok ? r.text() : '')).then((text) => {
    const re = /([\\d:.]+)\\s+-->\\s+([\\d:.]+)[^\\n]*\\n([^\\s#]+)#xywh=(\\d+),(\\d+),(\\d+),(\\d+)/g
    for (const m of text.matchAll(re)) cues.push({ from: seconds(m[1]), to: seconds(m[2]), url: new URL(m[3], new URL('thumbs/', location.href)).href, x: +m[4], y: +m[5], w: +m[6], h: +m[7] })
    state.thumbCues = cues.length
  }).catch(() => {})
  seek.addEventListener('pointerleave', () => (thumb.style.display = 'none'))
  seek.addEventListener('pointermove', (e) => {
    const box = seek.getBoundingClientRect()
    const frac = Math.min(1, Math.max(0, (e.clientX - box.left) / box.width))
    const at = frac * (Number(seek.max) || 0)
    const cue = cues.find((c) => at >= c.from && at < c.to)
    if (!cue) { thumb.style.display = 'none'; return }
    Object.assign(thumb.style, { display: 'block', width: cue.w + 'px', height: cue.h + 'px', left: Math.max(0, e.clientX - box.left - cue.w / 2) + 'px', backgroundImage: 'url("' + cue.url + '")', backgroundPosition: -cue.x + 'px ' + -cue.y + 'px' })
    state.thumbShown = { at, url: cue.url, x: cue.x, y: cue.y, w: cue.w, h: cue.h }
  })
  if (window.Hls && Hls.isSupported()) {
    // CMCD (CTA-5004) as the CMCD= query parameter: the edge logs the session and prefetches nor.
    const hls = new Hls({ cmcd: {} })
    hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
      state.levels = data.levels.length
      const levels = data.levels.map((l, i) => [i, (l.height ? l.height + 'p' : 'level ' + i) + (l.bitrate ? ' · ' + Math.round(l.bitrate / 1000) + ' kb/s' : '')])
      const items = [[-1, 'Auto'], ...levels]
      state.qualities = items.map(([, label]) => label)
      menu($('quality'), items, -1, (i) => (hls.currentLevel = i), 2)
      video.play().catch(() => {})
    })
    hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, (_e, data) =>
      menu($('audio'), data.audioTracks.map((a, i) => [i, a.name || a.lang || 'audio ' + i]), hls.audioTrack, (i) => (hls.audioTrack = i), 2))
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, (_e, data) =>
      menu($('captions'), [[-1, 'Captions off'], ...data.subtitleTracks.map((s, i) => [i, s.name || s.lang || 'captions ' + i])], hls.subtitleTrack, (i) => (hls.subtitleTrack = i), 2))
    hls.on(Hls.Events.ERROR, (_e, data) => {
      state.errors.push({ type: data.type, details: data.details, fatal: !!data.fatal })
      if (data.fatal) { state.fatal = true; show('error: ' + (data.response && data.response.code === 403 ? 'this link has expired or is not valid here' : data.details)) }
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

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
/** Text made safe for HTML content and quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c)
}
