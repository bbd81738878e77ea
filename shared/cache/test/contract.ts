// The cache contract: tables of request → upstream reply → expected status, headers, body and
// upstream request count (the way Varnish's and Traffic Server's tests read), and one runner that
// plays a table against any cache: the engine with its memory tier or with its disk tier alone
// (engine-contract.test.ts), and the edge and shield processes built from dist (their
// integration tests), as undici runs one suite against every cache store.
//
// CACHE_CONTRACT needs no clock: staleness comes from the upstream's Age (RFC 9111 §4.2.3), so
// the rows run against real processes too. Rows that move a clock (`afterSec`) run only where the
// clock is injected (engine-table.test.ts).

import { createServer } from 'node:http'
import type { Test } from 'tap'
import { startTier, tempDir } from '../../testing/index.js'

/** What the upstream answers: the n-th request for a row's path gets replies[min(n, last)]. */
export interface Reply {
  readonly status: number
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string
}

export type Outcome = 'HIT' | 'MISS' | 'STALE' | 'REVALIDATED' | 'PASS'

export interface Step {
  readonly method?: 'GET' | 'HEAD'
  /** Query string without `?`. */
  readonly query?: string
  readonly headers?: Readonly<Record<string, string>>
  /** Move the injected clock forward before this step (rows with it run in-process only). */
  readonly afterSec?: number
  readonly expect: {
    readonly status: number
    readonly cache: Outcome
    /** Response fields to compare; null means absent. */
    readonly headers?: Readonly<Record<string, string | null>>
    /** The whole body ('' for HEAD, 304, 416). */
    readonly body?: string
  }
}

export interface CacheCase {
  readonly name: string
  readonly replies: readonly Reply[]
  readonly steps: readonly Step[]
  /** Requests the upstream saw once every step (and any background refresh) is done. */
  readonly upstream: number
  /** Fields the n-th upstream request carried (null = absent); `:method` and `:query` too. */
  readonly upstreamSaw?: readonly (Readonly<Record<string, string | null>> | undefined)[]
  /** 404s live in the memory tier only (shared/cache README), so this row needs one. */
  readonly needsMemoryTier?: boolean
}

const BODY = 'contract body 0123456789'
const MAX_AGE = { 'cache-control': 'max-age=3600' }

export const CACHE_CONTRACT: readonly CacheCase[] = [
  // ---- freshness (RFC 9111 §4.2)
  {
    name: 'a fresh answer is stored and answered from the cache',
    replies: [{ status: 200, headers: MAX_AGE, body: BODY }],
    steps: [
      { expect: { status: 200, cache: 'MISS', body: BODY } },
      { expect: { status: 200, cache: 'HIT', body: BODY, headers: { 'cache-control': 'max-age=3600' } } },
    ],
    upstream: 1,
  },
  {
    name: 'an answer already stale on arrival (Age past max-age) is fetched again',
    replies: [{ status: 200, headers: { 'cache-control': 'max-age=60', age: '120' }, body: BODY }],
    steps: [
      { expect: { status: 200, cache: 'MISS', body: BODY } },
      { expect: { status: 200, cache: 'MISS', body: BODY } },
    ],
    upstream: 2,
  },
  {
    name: 'stale-while-revalidate answers STALE at once and refreshes once in the background',
    replies: [
      {
        status: 200,
        headers: { 'cache-control': 'max-age=1, stale-while-revalidate=600', age: '5', etag: '"s1"' },
        body: BODY,
      },
      { status: 304, headers: { 'cache-control': 'max-age=3600', etag: '"s1"' } },
    ],
    steps: [
      { expect: { status: 200, cache: 'MISS', body: BODY } },
      { expect: { status: 200, cache: 'STALE', body: BODY } },
      { expect: { status: 200, cache: 'HIT', body: BODY } },
    ],
    upstream: 2,
    upstreamSaw: [{ 'if-none-match': null }, { 'if-none-match': '"s1"' }],
  },
  // ---- validation (RFC 9111 §4.3)
  {
    name: 'a stored answer that must be revalidated is validated with If-None-Match; a 304 serves it',
    replies: [
      { status: 200, headers: { 'cache-control': 'no-cache', etag: '"v1"' }, body: BODY },
      { status: 304, headers: { 'cache-control': 'no-cache', etag: '"v1"' } },
    ],
    steps: [
      { expect: { status: 200, cache: 'MISS', body: BODY } },
      { expect: { status: 200, cache: 'REVALIDATED', body: BODY, headers: { etag: '"v1"' } } },
    ],
    upstream: 2,
    upstreamSaw: [{ 'if-none-match': null }, { 'if-none-match': '"v1"' }],
  },
  {
    name: 'a revalidation answered with a new 200 replaces the stored answer',
    replies: [
      { status: 200, headers: { 'cache-control': 'no-cache', etag: '"v1"' }, body: BODY },
      { status: 200, headers: { 'cache-control': 'max-age=3600', etag: '"v2"' }, body: 'second version' },
    ],
    steps: [
      { expect: { status: 200, cache: 'MISS', body: BODY } },
      { expect: { status: 200, cache: 'MISS', body: 'second version', headers: { etag: '"v2"' } } },
      { expect: { status: 200, cache: 'HIT', body: 'second version' } },
    ],
    upstream: 2,
  },
  {
    name: "a client's matching If-None-Match gets a 304 from the cache",
    replies: [{ status: 200, headers: { ...MAX_AGE, etag: '"c1"' }, body: BODY }],
    steps: [
      { expect: { status: 200, cache: 'MISS', body: BODY } },
      {
        headers: { 'if-none-match': '"c1"' },
        expect: { status: 304, cache: 'HIT', body: '', headers: { etag: '"c1"' } },
      },
      { headers: { 'if-none-match': '"other"' }, expect: { status: 200, cache: 'HIT', body: BODY } },
    ],
    upstream: 1,
  },
  // ---- Vary (RFC 9111 §4.1)
  {
    name: 'Vary stores one answer per value of the named request field',
    replies: [{ status: 200, headers: { ...MAX_AGE, vary: 'Accept-Language' }, body: BODY }],
    steps: [
      { headers: { 'accept-language': 'en' }, expect: { status: 200, cache: 'MISS', body: BODY } },
      { headers: { 'accept-language': 'fr' }, expect: { status: 200, cache: 'MISS', body: BODY } },
      { headers: { 'accept-language': 'en' }, expect: { status: 200, cache: 'HIT', body: BODY } },
      { headers: { 'accept-language': 'fr' }, expect: { status: 200, cache: 'HIT', body: BODY } },
    ],
    upstream: 2,
    upstreamSaw: [{ 'accept-language': 'en' }, { 'accept-language': 'fr' }],
  },
  {
    name: 'Vary: * is passed and never stored',
    replies: [{ status: 200, headers: { ...MAX_AGE, vary: '*' }, body: BODY }],
    steps: [
      { expect: { status: 200, cache: 'PASS', body: BODY } },
      { expect: { status: 200, cache: 'PASS', body: BODY } },
    ],
    upstream: 2,
  },
  // ---- what is not stored (RFC 9111 §3, §5.2.2)
  {
    name: 'no-store is passed and never stored',
    replies: [{ status: 200, headers: { 'cache-control': 'no-store' }, body: BODY }],
    steps: [
      { expect: { status: 200, cache: 'PASS', body: BODY } },
      { expect: { status: 200, cache: 'PASS', body: BODY } },
    ],
    upstream: 2,
  },
  {
    name: 'private is passed and never stored by a shared cache',
    replies: [{ status: 200, headers: { 'cache-control': 'private, max-age=3600' }, body: BODY }],
    steps: [
      { expect: { status: 200, cache: 'PASS', body: BODY } },
      { expect: { status: 200, cache: 'PASS', body: BODY } },
    ],
    upstream: 2,
  },
  {
    name: 'an answer that sets a cookie is passed and never stored',
    replies: [{ status: 200, headers: { ...MAX_AGE, 'set-cookie': 'a=b' }, body: BODY }],
    steps: [
      { expect: { status: 200, cache: 'PASS', body: BODY } },
      { expect: { status: 200, cache: 'PASS', body: BODY } },
    ],
    upstream: 2,
  },
  {
    name: 'a 5xx is never stored',
    replies: [{ status: 503, headers: MAX_AGE, body: 'down' }],
    steps: [
      { expect: { status: 503, cache: 'MISS', body: 'down' } },
      { expect: { status: 503, cache: 'MISS', body: 'down' } },
    ],
    upstream: 2,
  },
  // ---- negative caching (shared/cache README: 404s briefly, in memory)
  {
    name: 'a 404 is stored briefly and answered from the cache',
    replies: [{ status: 404, headers: { 'content-type': 'text/plain' }, body: 'not here' }],
    steps: [
      { expect: { status: 404, cache: 'MISS', body: 'not here' } },
      { expect: { status: 404, cache: 'HIT', body: 'not here' } },
    ],
    upstream: 1,
    needsMemoryTier: true,
  },
  // ---- Range (RFC 9110 §14)
  {
    name: 'a Range on a stored answer is served as a 206 from the cache',
    replies: [{ status: 200, headers: MAX_AGE, body: BODY }],
    steps: [
      { expect: { status: 200, cache: 'MISS', body: BODY } },
      {
        headers: { range: 'bytes=2-5' },
        expect: {
          status: 206,
          cache: 'HIT',
          body: BODY.slice(2, 6),
          headers: { 'content-range': `bytes 2-5/${BODY.length}` },
        },
      },
      {
        headers: { range: `bytes=${BODY.length + 10}-` },
        expect: { status: 416, cache: 'HIT', body: '', headers: { 'content-range': `bytes */${BODY.length}` } },
      },
    ],
    upstream: 1,
  },
  {
    name: 'a Range on a miss fetches the whole answer (no Range upstream) and answers the range',
    replies: [{ status: 200, headers: MAX_AGE, body: BODY }],
    steps: [
      {
        headers: { range: 'bytes=0-3' },
        expect: {
          status: 206,
          cache: 'MISS',
          body: BODY.slice(0, 4),
          headers: { 'content-range': `bytes 0-3/${BODY.length}` },
        },
      },
      { expect: { status: 200, cache: 'HIT', body: BODY } },
    ],
    upstream: 1,
    upstreamSaw: [{ range: null }],
  },
  // ---- HEAD (RFC 9110 §9.3.2)
  {
    name: 'a HEAD miss fills with a GET, so the next GET is a hit',
    replies: [{ status: 200, headers: MAX_AGE, body: BODY }],
    steps: [
      { method: 'HEAD', expect: { status: 200, cache: 'MISS', body: '' } },
      { expect: { status: 200, cache: 'HIT', body: BODY } },
      { method: 'HEAD', expect: { status: 200, cache: 'HIT', body: '' } },
    ],
    upstream: 1,
    upstreamSaw: [{ ':method': 'GET' }],
  },
  // ---- query policy ('keep': the query is part of the key and reaches the upstream)
  {
    name: 'the query string is part of the key and reaches the upstream',
    replies: [{ status: 200, headers: MAX_AGE, body: BODY }],
    steps: [
      { query: 'a=1', expect: { status: 200, cache: 'MISS', body: BODY } },
      { query: 'a=2', expect: { status: 200, cache: 'MISS', body: BODY } },
      { query: 'a=1', expect: { status: 200, cache: 'HIT', body: BODY } },
    ],
    upstream: 2,
    upstreamSaw: [{ ':query': 'a=1' }, { ':query': 'a=2' }],
  },
]

/** One upstream request as the upstream saw it. */
export interface SeenRequest {
  readonly method: string
  readonly query: string
  readonly headers: Readonly<Record<string, string | undefined>>
}

/** The scripted upstream behind a subject: per path, its replies and the requests it saw. */
export class ContractUpstream {
  readonly #replies = new Map<string, readonly Reply[]>()
  readonly #seen = new Map<string, SeenRequest[]>()

  script(path: string, replies: readonly Reply[]): void {
    this.#replies.set(path, replies)
    this.#seen.set(path, [])
  }

  /** Record a request and pick its reply (a 404 for a path no row scripted). */
  answer(path: string, seen: SeenRequest): Reply {
    const replies = this.#replies.get(path)
    const log = this.#seen.get(path)
    if (replies === undefined || log === undefined) return { status: 404, body: 'unscripted' }
    log.push(seen)
    return replies[Math.min(log.length - 1, replies.length - 1)] ?? { status: 500 }
  }

  seen(path: string): readonly SeenRequest[] {
    return this.#seen.get(path) ?? []
  }
}

export interface ContractResponse {
  readonly status: number
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly body: string
}

export interface ContractSubject {
  readonly upstream: ContractUpstream
  readonly hasMemoryTier: boolean
  /** Whether `afterSec` steps can run (an injected clock). */
  readonly canMoveClock: boolean
  request(path: string, step: Step): Promise<ContractResponse>
  advanceClock?(seconds: number): void
}

/** Per step, a HIT may come a moment later than the answer before it (a fill commits after its
 * client got the last byte; a background refresh runs after the STALE answer). */
const SETTLE_DEADLINE_MS = 20_000

async function settle(): Promise<void> {
  await new Promise<void>((resolve) => setTimeout(resolve, 10))
}

/** Play each row against the subject, each under its own path below `prefix`. */
export function runCacheTable(t: Test, table: readonly CacheCase[], subject: ContractSubject, prefix: string): void {
  table.forEach((row, i) => {
    const skip =
      row.needsMemoryTier === true && !subject.hasMemoryTier
        ? 'stored in the memory tier only'
        : !subject.canMoveClock && row.steps.some((s) => s.afterSec !== undefined)
          ? 'moves the clock'
          : false
    void t.test(row.name, { skip }, async (t) => {
      const path = `${prefix}/row-${i}.bin`
      subject.upstream.script(path, row.replies)
      for (const [n, step] of row.steps.entries()) {
        if (step.afterSec !== undefined) subject.advanceClock?.(step.afterSec)
        let res = await subject.request(path, step)
        // Bounded: a HIT that has not landed yet is asked again until the deadline; a wrong cache
        // still fails (the answer stays what it is, and extra upstream requests fail the count).
        const deadline = Date.now() + SETTLE_DEADLINE_MS
        while (step.expect.cache === 'HIT' && res.headers['x-cache'] !== 'HIT' && Date.now() < deadline) {
          await settle()
          res = await subject.request(path, step)
        }
        const at = `step ${n + 1}`
        t.equal(res.status, step.expect.status, `${at}: status`)
        t.equal(res.headers['x-cache'], step.expect.cache, `${at}: x-cache`)
        if (step.expect.body !== undefined) t.equal(res.body, step.expect.body, `${at}: body`)
        for (const [name, value] of Object.entries(step.expect.headers ?? {})) {
          t.equal(res.headers[name], value ?? undefined, `${at}: ${name}`)
        }
      }
      // A background refresh may still be on its way to the upstream.
      const deadline = Date.now() + SETTLE_DEADLINE_MS
      while (subject.upstream.seen(path).length < row.upstream && Date.now() < deadline) await settle()
      const seen = subject.upstream.seen(path)
      t.equal(seen.length, row.upstream, 'upstream requests')
      row.upstreamSaw?.forEach((fields, n) => {
        const req = seen[n]
        if (fields === undefined || req === undefined) return
        for (const [name, value] of Object.entries(fields)) {
          const actual = name === ':method' ? req.method : name === ':query' ? req.query : req.headers[name]
          t.equal(actual, value ?? undefined, `upstream request ${n + 1}: ${name}`)
        }
      })
    })
  })
}

/** The contract's upstream as an HTTP server on 127.0.0.1 (for tiers run as processes). */
export async function startContractOrigin(
  upstream: ContractUpstream,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const headers: Record<string, string | undefined> = {}
    for (const [name, value] of Object.entries(req.headers))
      headers[name] = Array.isArray(value) ? value.join(', ') : value
    const reply = upstream.answer(path, { method: req.method ?? '', query: q === -1 ? '' : url.slice(q + 1), headers })
    const body = Buffer.from(reply.body ?? '')
    const out: Record<string, string> = { ...reply.headers }
    if (reply.status !== 304) out['content-length'] = String(body.length)
    res.writeHead(reply.status, out)
    res.end(reply.status === 304 || req.method === 'HEAD' ? undefined : body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** A tier process as a contract subject: each step is one HTTP request to `baseUrl`. */
export function httpSubject(baseUrl: string, upstream: ContractUpstream): ContractSubject {
  return {
    upstream,
    hasMemoryTier: true,
    canMoveClock: false,
    async request(path, step) {
      const query = step.query === undefined ? '' : `?${step.query}`
      const res = await fetch(`${baseUrl}${path}${query}`, {
        method: step.method ?? 'GET',
        headers: { ...step.headers },
      })
      const headers: Record<string, string> = {}
      res.headers.forEach((value, name) => {
        headers[name] = value
      })
      return { status: res.status, headers, body: await res.text() }
    },
  }
}

/**
 * The whole contract against a tier process built from dist, in front of the contract's scripted
 * origin: `configFor` gives the tier's config (without its cache dir) for that origin's URL.
 */
export async function runTierContract(
  t: Test,
  tier: 'edge' | 'shield',
  configFor: (originUrl: string) => Record<string, unknown>,
): Promise<void> {
  const tmp = tempDir(`vcdn-${tier}-contract-`)
  t.teardown(tmp.remove)
  const upstream = new ContractUpstream()
  const origin = await startContractOrigin(upstream)
  t.teardown(() => origin.close())
  const node = await startTier(
    tier,
    { ...configFor(origin.url), paths: ['/contract/'], cache: { dir: `${tmp.dir}/cache` } },
    { dir: tmp.dir },
  )
  t.teardown(() => node.stop())
  runCacheTable(t, CACHE_CONTRACT, httpSubject(node.url, upstream), `/contract/${tier}`)
}
