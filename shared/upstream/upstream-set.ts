import { VcdnError, isVcdnError } from '../errors/index.js'
import { Histogram } from '../metrics/index.js'
import { UpstreamClient, type UpstreamRequestInit, type UpstreamResponse } from './client.js'
import { hrwScore, hrwSeed } from './hrw.js'

export interface UpstreamLogger {
  info(o: object, msg?: string): void
  warn(o: object, msg?: string): void
}

export interface UpstreamSetOptions {
  urls: string[]
  /** Builds the client for one url (default: `new UpstreamClient({ baseUrl: url })`). The set owns and closes them. */
  client?: (url: string) => UpstreamClient
  /** Used when no upstream in the set is healthy or all of them failed (the edge's origin). Owned and closed by the set. */
  fallback?: UpstreamClient
  now?: () => number
  /** Consecutive failures that mark an upstream down (default 3). */
  failThreshold?: number
  /** Period of the active probes (default 2_000). */
  probeIntervalMs?: number
  /** Per-probe timeout (default: probeIntervalMs). */
  probeTimeoutMs?: number
  /** Probe target (default '/healthz'); any 2xx means healthy. */
  probePath?: string
  /** Cap of the exponential probe backoff for a down upstream (default 30_000). */
  backoffMaxMs?: number
  log?: UpstreamLogger
}

interface Member {
  readonly url: string
  readonly client: UpstreamClient
  readonly seed: number
  isUp: boolean
  consecutiveFailures: number
  backoffMs: number
  nextProbeAtMs: number
  isProbing: boolean
  /** Answered its latest probe or request (false until the first answer): what readiness reads. */
  isReachable: boolean
  /** Requests sent to it by request() (probes not included), and those that failed to connect or timed out. */
  requests: number
  failures: number
  /** Seconds from sending a request to its response headers, for requests that got them. */
  readonly headersTime: Histogram
}

/** One upstream's health and counts as metrics expose them (docs/architecture.md §10.3). */
export interface UpstreamStats {
  readonly url: string
  /** 'fallback' for the edge's origin, probed only while no member answers. */
  readonly role: 'member' | 'fallback'
  readonly isUp: boolean
  readonly requests: number
  readonly failures: number
  readonly headersTime: Histogram
}

/**
 * Shield (or origin) selection for one tier (docs/architecture.md §4): rendezvous hashing of the
 * cache key over the healthy members, passive health (connect/timeout errors count as failures, 5xx
 * answers do not; `failThreshold` in a row marks a member down) and active probes (`start()`):
 * every member is probed each interval; a down one only when its backoff (interval, doubling,
 * capped) has passed, and one 2xx probe brings it back. All member state is owned by this instance
 * and mutated only on the event loop, so no locking is needed.
 */
export class UpstreamSet {
  readonly #members: Member[]
  readonly #byUrl = new Map<string, Member>()
  readonly #fallback: UpstreamClient | undefined
  /** The fallback's probe state (it is not in the HRW order); probed only while no member answers. */
  readonly #fallbackMember: Member | undefined
  readonly #now: () => number
  readonly #failThreshold: number
  readonly #probeIntervalMs: number
  readonly #probeTimeoutMs: number
  readonly #probePath: string
  readonly #backoffMaxMs: number
  readonly #log: UpstreamLogger | undefined
  #timer: NodeJS.Timeout | undefined
  #isClosed = false

  constructor(opts: UpstreamSetOptions) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('UpstreamSet: options must be an object')
    if (!Array.isArray(opts.urls) || opts.urls.length === 0)
      throw new TypeError('UpstreamSet: options.urls must be a non-empty array')
    if (opts.client !== undefined && typeof opts.client !== 'function')
      throw new TypeError('UpstreamSet: options.client must be a function')
    if (opts.fallback !== undefined && !(opts.fallback instanceof UpstreamClient)) {
      throw new TypeError('UpstreamSet: options.fallback must be an UpstreamClient')
    }
    if (opts.now !== undefined && typeof opts.now !== 'function')
      throw new TypeError('UpstreamSet: options.now must be a function')
    this.#now = opts.now ?? Date.now
    this.#failThreshold = positiveInt(opts.failThreshold, 3, 'failThreshold')
    this.#probeIntervalMs = positiveInt(opts.probeIntervalMs, 2_000, 'probeIntervalMs')
    this.#probeTimeoutMs = positiveInt(opts.probeTimeoutMs, this.#probeIntervalMs, 'probeTimeoutMs')
    this.#backoffMaxMs = positiveInt(opts.backoffMaxMs, 30_000, 'backoffMaxMs')
    const probePath = opts.probePath ?? '/healthz'
    if (typeof probePath !== 'string' || !probePath.startsWith('/'))
      throw new TypeError("UpstreamSet: options.probePath must start with '/'")
    this.#probePath = probePath
    this.#log = opts.log
    const makeClient = opts.client ?? ((url: string) => new UpstreamClient({ baseUrl: url }))
    this.#members = opts.urls.map((url, i) => {
      if (typeof url !== 'string' || !/^https?:\/\/[^/]/.test(url))
        throw new TypeError(`UpstreamSet: options.urls[${i}] must be an http(s) URL`)
      if (this.#byUrl.has(url)) throw new TypeError(`UpstreamSet: options.urls[${i}] is a duplicate`)
      const member = newMember(url, makeClient(url), hrwSeed(url))
      this.#byUrl.set(url, member)
      return member
    })
    this.#fallback = opts.fallback
    this.#fallbackMember = opts.fallback === undefined ? undefined : newMember(opts.fallback.baseUrl, opts.fallback, 0)
  }

  /** Healthy urls for `key`, best first. */
  order(key: string): string[] {
    return this.#ordered(key, false).map((m) => m.url)
  }

  healthy(): string[] {
    return this.#members.filter((m) => m.isUp).map((m) => m.url)
  }

  /**
   * Whether some member, or the fallback, answered its latest probe or request (`/readyz`). False
   * until the first answer, and as soon as a failure follows one, unlike `healthy()`, which waits
   * for `failThreshold` failures before it drops a member.
   */
  isAnyReachable(): boolean {
    return this.#members.some((m) => m.isReachable) || this.#fallbackMember?.isReachable === true
  }

  /** Every member, then the fallback: health, request counts and time to headers (read at scrape). */
  *stats(): Iterable<UpstreamStats> {
    for (const m of this.#members) yield { ...statsOf(m), role: 'member' }
    if (this.#fallbackMember !== undefined) yield { ...statsOf(this.#fallbackMember), role: 'fallback' }
  }

  /**
   * Sends `key` (the cache key, which is the request path) to the healthy members in HRW order.
   * Connect errors and timeouts before headers mark a failure and move on to the next member; a
   * 5xx is returned as is and does not count against the member. GET and HEAD only move on: a POST may already
   * have reached the upstream. With nobody left, the fallback if configured, else the last failure.
   */
  async request(key: string, init: UpstreamRequestInit): Promise<UpstreamResponse & { upstream: string }> {
    let lastError: VcdnError | undefined
    let members = this.#ordered(key, false)
    // Like nginx when every server of an upstream block is marked failed: with nobody healthy and
    // no fallback, try them all anyway rather than refuse (a lone origin marked down by a few
    // per-object failures must not black-hole the tier until the next probe).
    if (members.length === 0 && this.#fallback === undefined) members = this.#ordered(key, true)
    for (const member of members) {
      const sentMs = performance.now()
      member.requests++
      try {
        const res = await member.client.request(key, init)
        member.headersTime.observe((performance.now() - sentMs) / 1000)
        // A 5xx is the upstream's answer about this object (a shield relaying an origin outage),
        // not a sign that the upstream itself is down: like nginx's default proxy_next_upstream
        // (error timeout) it does not count. Active probes catch an upstream that is really sick.
        this.#succeeded(member)
        return { ...res, upstream: member.url }
      } catch (err) {
        if (!isVcdnError(err) || (err.code !== 'ERR_UPSTREAM_CONNECT' && err.code !== 'ERR_UPSTREAM_TIMEOUT')) throw err
        member.failures++
        this.#failed(member, err.code)
        lastError = err
        if (init.method !== 'GET' && init.method !== 'HEAD') throw err
      }
    }
    const fallback = this.#fallbackMember
    if (this.#fallback !== undefined && fallback !== undefined) {
      const sentMs = performance.now()
      fallback.requests++
      try {
        const res = await this.#fallback.request(key, init)
        fallback.headersTime.observe((performance.now() - sentMs) / 1000)
        return { ...res, upstream: this.#fallback.baseUrl }
      } catch (err) {
        if (isVcdnError(err) && (err.code === 'ERR_UPSTREAM_CONNECT' || err.code === 'ERR_UPSTREAM_TIMEOUT'))
          fallback.failures++
        throw err
      }
    }
    // Every member was tried and failed: the last failure says best what happened (502 refused,
    // 504 timed out). ERR_UPSTREAM_NONE is left for a set with nobody to try.
    if (lastError !== undefined) throw lastError
    throw new VcdnError('ERR_UPSTREAM_NONE', `${this.#members.length} configured`)
  }

  markFailure(url: string): void {
    const member = this.#byUrl.get(url)
    if (member !== undefined) this.#failed(member, 'reported')
  }

  markSuccess(url: string): void {
    const member = this.#byUrl.get(url)
    if (member !== undefined) this.#succeeded(member)
  }

  /** Starts the active probes (timer unref'd: it never keeps the process alive). Idempotent. */
  start(): void {
    if (this.#timer !== undefined || this.#isClosed) return
    this.#timer = setInterval(() => void this.probe(), this.#probeIntervalMs)
    this.#timer.unref()
  }

  /** One probe round (what the timer runs); exposed so tests and `/readyz` need not wait for it. */
  async probe(): Promise<void> {
    const probes = this.#members.map((m) => this.#probeOne(m))
    // The fallback is asked only while no member answers: that is when it would serve.
    if (this.#fallbackMember !== undefined && !this.#members.some((m) => m.isReachable))
      probes.push(this.#probeOne(this.#fallbackMember))
    await Promise.all(probes)
  }

  async close(): Promise<void> {
    this.#isClosed = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    const clients = this.#members.map((m) => m.client)
    if (this.#fallback !== undefined) clients.push(this.#fallback)
    await Promise.all(clients.map((c) => c.close()))
  }

  #ordered(key: string, isDownIncluded: boolean): Member[] {
    const scored: { member: Member; score: number }[] = []
    for (const member of this.#members) {
      if (member.isUp || isDownIncluded) scored.push({ member, score: hrwScore(member.seed, key) })
    }
    // Ties (1 in 2^32) are broken by url so every process orders identically.
    scored.sort((a, b) => b.score - a.score || (a.member.url < b.member.url ? -1 : 1))
    return scored.map((s) => s.member)
  }

  async #probeOne(member: Member): Promise<void> {
    if (member.isProbing || this.#isClosed) return
    if (!member.isUp && this.#now() < member.nextProbeAtMs) return
    member.isProbing = true
    let isOk = false
    try {
      const res = await member.client.request(this.#probePath, {
        method: 'GET',
        signal: AbortSignal.timeout(this.#probeTimeoutMs),
      })
      for await (const chunk of res.body) void chunk // small; reading it returns the connection to the pool
      isOk = res.status >= 200 && res.status < 300
    } catch {
      isOk = false
    } finally {
      member.isProbing = false
    }
    if (this.#isClosed) return
    if (isOk) this.#succeeded(member)
    else if (member.isUp) this.#failed(member, 'probe')
    else {
      member.isReachable = false
      member.backoffMs = Math.min(member.backoffMs * 2, this.#backoffMaxMs)
      member.nextProbeAtMs = this.#now() + member.backoffMs
    }
  }

  #failed(member: Member, reason: string): void {
    member.isReachable = false
    member.consecutiveFailures++
    if (member.isUp && member.consecutiveFailures >= this.#failThreshold) {
      member.isUp = false
      member.backoffMs = Math.min(this.#probeIntervalMs, this.#backoffMaxMs)
      member.nextProbeAtMs = this.#now() + member.backoffMs
      this.#log?.warn({ upstream: member.url, failures: member.consecutiveFailures, reason }, 'upstream marked down')
    }
  }

  #succeeded(member: Member): void {
    member.isReachable = true
    member.consecutiveFailures = 0
    if (!member.isUp) {
      member.isUp = true
      member.backoffMs = 0
      this.#log?.info({ upstream: member.url }, 'upstream marked up')
    }
  }
}

function statsOf(m: Member): Omit<UpstreamStats, 'role'> {
  return { url: m.url, isUp: m.isUp, requests: m.requests, failures: m.failures, headersTime: m.headersTime }
}

function positiveInt(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 1)
    throw new TypeError(`UpstreamSet: options.${field} must be a positive integer`)
  return value
}

/** A member as it starts: up, never probed, nothing counted. */
function newMember(url: string, client: Member['client'], seed: Member['seed']): Member {
  return {
    url,
    client,
    seed,
    isUp: true,
    consecutiveFailures: 0,
    backoffMs: 0,
    nextProbeAtMs: 0,
    isProbing: false,
    isReachable: false,
    requests: 0,
    failures: 0,
    headersTime: new Histogram(),
  }
}
