// N simulated HLS players, each doing what hls.js does for a VOD (RFC 8216): the multivariant
// playlist, one variant's media playlist, its EXT-X-MAP init segment, then media segments in
// order at real-time pace (÷ speed), switching variants by throughput (abr.ts); an audio
// rendition, when the variant names one, plays alongside on its own timeline. A failed request is
// retried with backoff like hls.js's fragment retry, a few times, then the player gives up.
// With `isCmcd`, segment requests carry CMCD (CTA-5004) as hls.js and dash.js send it in headers:
// the player's session id and the next object it will ask for (nor), which an edge may prefetch.
import { randomUUID } from 'node:crypto'
import { VcdnError, toCode } from '../../shared/errors/index.js'
import { parseMaster, parseMedia, type MasterPlaylistInfo } from '../../shared/hls/index.js'
import { nextLevel, startLevel, type AbrState } from './abr.js'
import type { Fetched, LoadHttp } from './http.js'
import type { Recorder, RequestKind } from './stats.js'

export interface PlayersOptions {
  masterUrl: URL
  players: number
  /** Players start evenly spread over this time (0: all at once). */
  rampMs: number
  /** Time compression: 10 plays a 6 s segment every 600 ms. */
  speed: number
  /** At the end of the playlist, start again from the first segment instead of stopping. */
  isLoop: boolean
  /** Attempts after the first for one object before the player gives up. */
  retries: number
  /** Send CMCD headers (CTA-5004): sid on every segment request, nor naming the next segment. */
  isCmcd?: boolean
  http: LoadHttp
  recorder: Recorder
  /** Aborted at the deadline or on SIGINT: no new request starts, requests in flight finish. */
  stop: AbortSignal
}

type Outcome = 'finished' | 'stopped' | 'failed'

interface Rendition {
  url: URL
  bandwidth: number
}

interface Playlist {
  mapUrl: URL | undefined
  segments: { url: URL; durationS: number; startS: number }[]
}

const RETRY_BASE_MS = 1_000
// A run is bounded by its deadline; this bounds a track's loop by count as well.
const MAX_STEPS_PER_TRACK = 10_000_000
// Remembered URLs for the repeat-request X-Cache count; beyond this, new URLs are not tracked.
const MAX_TRACKED_URLS = 1_000_000
// A request is a repeat when the same URL was fetched whole at least this long before it started.
// A cache may hand out the last byte a moment before its fill is done and stored (nginx does
// too); a request in that moment joins the fill and is a MISS though nothing is wrong.
export const REPEAT_AFTER_MS = 1_000

/**
 * A URI from a playlist, resolved against the playlist's URL (RFC 3986 §5). A relative URI
 * without a query of its own carries the playlist URL's query: a query token (`?token=`) signs the
 * whole video the way a path token (`/t/…/`, kept by resolution) does.
 */
export function resolveUri(uri: string, base: URL): URL {
  const url = new URL(uri, base)
  const isRelative = !/^[a-z][a-z0-9+.-]*:/i.test(uri) && !uri.startsWith('//')
  if (isRelative && !uri.includes('?') && base.search !== '') url.search = base.search
  return url
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve()
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}

export class Players {
  readonly #o: PlayersOptions
  /** URL → when this run last had it whole (performance.now() ms). */
  readonly #fetched = new Map<string, number>()

  constructor(o: PlayersOptions) {
    this.#o = o
  }

  /**
   * The first player's master playlist decides whether the run starts at all: a transport error,
   * a non-2xx answer or an unparsable playlist throws its coded error (nothing else is sent).
   */
  async run(): Promise<void> {
    const { masterUrl, recorder, http, stop } = this.#o
    let first: Fetched
    try {
      first = await http.get(masterUrl, true)
    } catch (err) {
      recorder.failure('master', toCode(err))
      throw err
    }
    this.#record('master', masterUrl, first, false)
    if (first.status < 200 || first.status > 299) {
      throw new VcdnError('ERR_UPSTREAM_STATUS', `master playlist answered ${first.status}`)
    }
    const master = this.#parseMaster(first.text ?? '')
    if (master === null) throw new VcdnError('ERR_UPSTREAM_BODY', 'not a multivariant playlist with variants')
    const t0 = performance.now()
    const running: Promise<void>[] = []
    for (let i = 0; i < this.#o.players && !stop.aborted; i++) {
      await sleep(t0 + (i * this.#o.rampMs) / this.#o.players - performance.now(), stop)
      if (stop.aborted) break
      recorder.players.started++
      running.push(
        this.#play(i === 0 ? master : null).then((outcome) => {
          if (outcome === 'finished') recorder.players.finished++
          else if (outcome === 'failed') recorder.players.failed++
        }),
      )
    }
    await Promise.all(running)
  }

  #parseMaster(text: string): MasterPlaylistInfo | null {
    try {
      const info = parseMaster(text)
      return info.variants.length > 0 ? info : null
    } catch {
      return null
    }
  }

  async #play(known: MasterPlaylistInfo | null): Promise<Outcome> {
    const { masterUrl, recorder } = this.#o
    let master = known
    if (master === null) {
      const r = await this.#get('master', masterUrl, true, this.#o.stop)
      if (r === null) return this.#o.stop.aborted ? 'stopped' : 'failed'
      master = this.#parseMaster(r.text ?? '')
      if (master === null) {
        recorder.invalid('ERR_UPSTREAM_BODY')
        return 'failed'
      }
    }
    const variants = [...master.variants].sort((a, b) => a.bandwidth - b.bandwidth)
    const level = startLevel(variants.length)
    const group = variants[level]?.audioGroupId
    const audio = master.audio
      .filter((a) => a.groupId === group && a.uri !== undefined)
      .sort((a, b) => Number(b.isDefault) - Number(a.isDefault))[0]
    let video: Rendition[]
    let audioUrl: URL | undefined
    try {
      video = variants.map((v) => ({ url: resolveUri(v.uri, masterUrl), bandwidth: v.bandwidth }))
      audioUrl = audio?.uri === undefined ? undefined : resolveUri(audio.uri, masterUrl)
    } catch {
      // A URI no URL parser accepts: the playlist is unusable, as it would be for hls.js.
      recorder.invalid('ERR_UPSTREAM_BODY')
      return 'failed'
    }
    // A player whose video or audio gives up stops altogether, as hls.js does on a fatal error.
    const quit = new AbortController()
    const signal = AbortSignal.any([this.#o.stop, quit.signal])
    // CTA-5004 sid: one per playback session, shared by its video and audio tracks.
    const sid = this.#o.isCmcd === true ? randomUUID() : null
    const play = async (renditions: readonly Rendition[], start: number, isAbr: boolean): Promise<Outcome> => {
      const outcome = await this.#track(renditions, start, isAbr, signal, sid)
      if (outcome === 'failed') quit.abort()
      return outcome
    }
    const tracks = [play(video, level, true)]
    if (audioUrl !== undefined) tracks.push(play([{ url: audioUrl, bandwidth: 0 }], 0, false))
    const outcomes = await Promise.all(tracks)
    if (outcomes.includes('failed')) return 'failed'
    return outcomes.includes('stopped') ? 'stopped' : 'finished'
  }

  /** One track: playlist, init, segments at pace; `isAbr` for the video track. */
  async #track(
    renditions: readonly Rendition[],
    start: number,
    isAbr: boolean,
    stop: AbortSignal,
    sid: string | null,
  ): Promise<Outcome> {
    const { recorder, speed, isLoop } = this.#o
    const playlists = new Map<number, Playlist>()
    const inits = new Set<number>()
    let abr: AbrState = { level: start, streak: 0 }
    let positionS = 0
    for (let step = 0; step < MAX_STEPS_PER_TRACK; step++) {
      if (stop.aborted) return 'stopped'
      const rendition = renditions[abr.level] as Rendition
      let playlist = playlists.get(abr.level)
      if (playlist === undefined) {
        const r = await this.#get('playlist', rendition.url, true, stop)
        if (r === null) return stop.aborted ? 'stopped' : 'failed'
        const parsed = this.#parseMedia(r.text ?? '', rendition.url)
        if (parsed === null) {
          recorder.invalid('ERR_UPSTREAM_BODY')
          return 'failed'
        }
        playlist = parsed
        playlists.set(abr.level, playlist)
        continue
      }
      // hls.js loads a level's init segment once and keeps it for later switches back.
      if (playlist.mapUrl !== undefined && !inits.has(abr.level)) {
        const r = await this.#get('init', playlist.mapUrl, false, stop)
        if (r === null) return stop.aborted ? 'stopped' : 'failed'
        inits.add(abr.level)
        continue
      }
      // Switching keeps the play position: the first segment of the new variant at or after it.
      const index = playlist.segments.findIndex((s) => s.startS >= positionS - 1e-3)
      const segment = playlist.segments[index]
      if (segment === undefined) {
        if (!isLoop) return 'finished'
        positionS = 0
        continue
      }
      const t0 = performance.now()
      const cmcd = sid === null ? undefined : cmcdHeaders(sid, segment.url, playlist.segments[index + 1]?.url)
      const r = await this.#get('segment', segment.url, false, stop, cmcd)
      if (r === null) return stop.aborted ? 'stopped' : 'failed'
      const fetchMs = performance.now() - t0
      const paceMs = (segment.durationS * 1000) / speed
      if (fetchMs > paceMs) recorder.players.lateSegments++
      positionS = segment.startS + segment.durationS
      if (isAbr) {
        const byBandwidth = recorder.players.segmentsByBandwidth
        byBandwidth[rendition.bandwidth] = (byBandwidth[rendition.bandwidth] ?? 0) + 1
        const sampleBps = (r.bytes * 8) / (Math.max(r.totalMs, 0.1) / 1000)
        const next = nextLevel(
          renditions.map((v) => v.bandwidth),
          abr,
          sampleBps,
          speed,
        )
        if (next.level > abr.level) recorder.players.abrUp++
        if (next.level < abr.level) recorder.players.abrDown++
        abr = next
      }
      // Real-time pace: the next segment starts one (compressed) duration after this one did.
      await sleep(paceMs - fetchMs, stop)
    }
    return 'stopped'
  }

  #parseMedia(text: string, base: URL): Playlist | null {
    try {
      const info = parseMedia(text)
      if (info.segments.length === 0) return null
      let startS = 0
      const segments = info.segments.map((s) => {
        const segment = { url: resolveUri(s.uri, base), durationS: s.durationS, startS }
        startS += s.durationS
        return segment
      })
      if (startS <= 0) return null
      return { mapUrl: info.mapUri === undefined ? undefined : resolveUri(info.mapUri, base), segments }
    } catch {
      return null
    }
  }

  /** GET with hls.js-like retries; null when the player gives up or the run stops. */
  async #get(
    kind: RequestKind,
    url: URL,
    isText: boolean,
    stop: AbortSignal,
    headers?: Readonly<Record<string, string>>,
  ): Promise<Fetched | null> {
    const { http, recorder } = this.#o
    for (let attempt = 0; attempt <= this.#o.retries; attempt++) {
      if (attempt > 0) await sleep((RETRY_BASE_MS * 2 ** (attempt - 1)) / this.#o.speed, stop)
      if (stop.aborted) return null
      const isRepeat = performance.now() - (this.#fetched.get(url.href) ?? Infinity) >= REPEAT_AFTER_MS
      let r: Fetched
      try {
        r = await http.get(url, isText, headers)
      } catch (err) {
        recorder.failure(kind, toCode(err))
        continue
      }
      this.#record(kind, url, r, isRepeat)
      if (r.status >= 200 && r.status <= 299) return r
    }
    return null
  }

  #record(kind: RequestKind, url: URL, r: Fetched, isRepeat: boolean): void {
    this.#o.recorder.response({
      kind,
      status: r.status,
      bytes: r.bytes,
      ttfbMs: r.ttfbMs,
      xCache: r.headers['x-cache'],
      isRepeat,
    })
    // The first time only: a repeat is measured from the first whole fetch.
    const isFirst = !this.#fetched.has(url.href) && this.#fetched.size < MAX_TRACKED_URLS
    if (r.status >= 200 && r.status <= 299 && isFirst) {
      this.#fetched.set(url.href, performance.now())
    }
  }
}

/**
 * CMCD (CTA-5004) request headers for a segment: the session id, and `nor` naming the next segment
 * relative to this one (its file name when in the same directory, else its path), URL-encoded as
 * CTA-5004 asks; no nor after the last segment.
 */
export function cmcdHeaders(sid: string, url: URL, next: URL | undefined): Record<string, string> {
  const headers: Record<string, string> = { 'cmcd-session': `sid="${sid}"` }
  if (next === undefined) return headers
  const dir = url.pathname.slice(0, url.pathname.lastIndexOf('/') + 1)
  const isSibling =
    next.origin === url.origin && next.pathname.startsWith(dir) && !next.pathname.slice(dir.length).includes('/')
  const nor = isSibling ? next.pathname.slice(dir.length) : next.pathname
  headers['cmcd-request'] = `nor="${encodeURIComponent(nor)}"`
  return headers
}
