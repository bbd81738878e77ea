// `workers: 2` answers fresh memory hits in the worker thread, without a round trip to the
// coordinator (docs/architecture.md §9.1): the hits are byte-identical and counted as the engine's,
// a purge or a soft purge is never followed by a hit on the old copy, a stale copy goes back to the
// coordinator to be revalidated, and conditionals, Range and HEAD answered in a worker are what
// the engine answers. A real shield process in front of a scripted origin, on 127.0.0.1.
import t from 'tap'
import { createHash } from 'node:crypto'
import { Agent, request } from 'undici'
import { parseMetrics } from '../../../shared/metrics/index.js'
import { metric, ScriptedOrigin, startTier, tempDir, waitFor } from '../../../shared/testing/index.js'

const SECRET = 'local-hits-tier-secret-0123456789'
const LAST_MODIFIED = 'Wed, 01 Jan 2020 00:00:00 GMT'
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** Deterministic bytes of one version of an object. */
function bodyOf(version: number, size = 64 * 1024): Buffer {
  const b = Buffer.alloc(size)
  for (let i = 0; i < size; i++) b[i] = (i * 31 + version * 17) & 0xff
  return b
}

interface Answer {
  status: number
  headers: Record<string, string>
  body: Buffer
}

/** One request on a connection of its own: the kernel's SO_REUSEPORT hash picks a worker per connection. */
async function fresh(
  url: string,
  method: 'GET' | 'HEAD' = 'GET',
  headers: Record<string, string> = {},
): Promise<Answer> {
  const agent = new Agent({ pipelining: 0 })
  try {
    const r = await request(url, { method, headers, dispatcher: agent })
    const body = Buffer.from(await r.body.arrayBuffer())
    const flat: Record<string, string> = {}
    for (const [name, value] of Object.entries(r.headers)) if (typeof value === 'string') flat[name] = value
    return { status: r.statusCode, headers: flat, body }
  } finally {
    await agent.close()
  }
}

/** The sum of every sample of a metric (labels ignored), and its samples by one label's value. */
async function samples(adminUrl: string, name: string): Promise<{ sum: number; by: Map<string, number> }> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text()
  let sum = 0
  const by = new Map<string, number>()
  for (const [series, value] of parseMetrics(text)) {
    if (series !== name && !series.startsWith(`${name}{`)) continue
    sum += value
    const label = /="([^"]*)"/.exec(series)?.[1]
    if (label !== undefined) by.set(label, value)
  }
  return { sum, by }
}

t.test('a shield with workers: 2 answers fresh memory hits in its workers', async (t) => {
  t.setTimeout(240_000)
  t.comment('timeout=240000')
  const tmp = tempDir('vcdn-local-hits-')
  t.teardown(tmp.remove)
  const origin = new ScriptedOrigin()
  let version = 1
  let conditionals = 0
  /** A validating route: ETag and Last-Modified, 304 to an If-None-Match naming the current version. */
  const route = (path: string, maxAgeS: number): void => {
    origin.routes.set(path, (req, res) => {
      const etag = `"v${version}"`
      const headers = { 'cache-control': `max-age=${maxAgeS}`, etag, 'last-modified': LAST_MODIFIED }
      if (req.headers['if-none-match'] !== undefined) conditionals++
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, headers).end()
        return
      }
      const body = bodyOf(version)
      res
        .writeHead(200, { ...headers, 'content-type': 'application/octet-stream', 'content-length': body.length })
        .end(req.method === 'HEAD' ? undefined : body)
    })
  }
  route('/assets/hot.bin', 3600)
  route('/assets/short.bin', 2)
  // A target stored as variants (RFC 9111 §4.1): its bytes depend on Accept-Language.
  const languages = ['en', 'fr'] as const
  const langBody = (lang: string): Buffer => bodyOf(version * 10 + languages.indexOf(lang as 'en' | 'fr'), 16 * 1024)
  origin.routes.set('/assets/lang.bin', (req, res) => {
    const lang = String(req.headers['accept-language'])
    const body = langBody(lang)
    res
      .writeHead(200, {
        'cache-control': 'max-age=3600',
        vary: 'Accept-Language',
        'content-type': 'application/octet-stream',
        'content-length': body.length,
      })
      .end(req.method === 'HEAD' ? undefined : body)
  })
  await origin.listen()
  t.teardown(() => origin.close())
  const start = (workers: number, name: string) =>
    startTier(
      'shield',
      {
        tierSecret: SECRET,
        upstreams: [origin.url],
        cache: { dir: `${tmp.dir}/${name}` },
        paths: ['/'],
        requireTierSecret: false,
        workers,
        register: { isEnabled: false },
      },
      { dir: tmp.dir },
    )
  const shield = await start(2, 'workers')
  t.teardown(() => shield.stop())
  const admin = shield.adminUrl
  const hot = `${shield.url}/assets/hot.bin`
  const requestsCounted = async (): Promise<number> => (await samples(admin, 'vcdn_shield_requests_total')).sum
  let sent = 0
  /** `n` GETs of `url` on connections of their own, once the coordinator counted each one. */
  const getMany = async (url: string, n: number): Promise<Answer[]> => {
    const answers = await Promise.all(Array.from({ length: n }, () => fresh(url)))
    sent += n
    await waitFor(async () => (await requestsCounted()) >= sent, { what: 'the workers’ requests counted' })
    return answers
  }

  t.test('once a key is warm in both workers, hits cost no round trip and are counted as HITs', async (t) => {
    const first = await getMany(hot, 1)
    t.equal(first[0]?.headers['x-cache'], 'MISS')
    // Warm both workers: each one's first request is answered by the coordinator, which hands it
    // the entry; the kernel's hash of each new connection picks the worker (bounded rounds).
    for (let round = 0; round < 20; round++) {
      await getMany(hot, 8)
      const local = await samples(admin, 'vcdn_shield_worker_local_hits_total')
      if ((local.by.get('1') ?? 0) > 0 && (local.by.get('2') ?? 0) > 0) break
    }
    const roundTrips = await metric(admin, 'vcdn_shield_worker_round_trips_total')
    const local = await samples(admin, 'vcdn_shield_worker_local_hits_total')
    t.ok((local.by.get('1') ?? 0) > 0 && (local.by.get('2') ?? 0) > 0, 'both workers answer hits themselves')
    const hits = await metric(admin, 'vcdn_shield_cache_hits_total')
    const hitRequests = await metric(admin, 'vcdn_shield_requests_total{status="200",class="2xx",cache="HIT"}')
    const hitBytes = await metric(admin, 'vcdn_shield_sent_bytes_by_cache_total{cache="HIT"}')

    const answers = await getMany(hot, 40)
    const expected = sha(bodyOf(1))
    t.equal(answers.filter((a) => a.status === 200 && sha(a.body) === expected).length, 40, 'byte-identical')
    t.equal(answers.filter((a) => a.headers['x-cache'] === 'HIT').length, 40, 'every one a HIT')
    t.equal(
      await metric(admin, 'vcdn_shield_worker_round_trips_total'),
      roundTrips,
      'no request reached the coordinator',
    )
    const after = await samples(admin, 'vcdn_shield_worker_local_hits_total')
    t.equal(after.sum, local.sum + 40, 'all 40 answered in a worker')
    t.ok(
      (after.by.get('1') ?? 0) > (local.by.get('1') ?? 0) && (after.by.get('2') ?? 0) > (local.by.get('2') ?? 0),
      'by both workers',
    )
    t.equal(await metric(admin, 'vcdn_shield_cache_hits_total'), hits + 40, 'the engine counts them as its hits')
    t.equal(
      await metric(admin, 'vcdn_shield_requests_total{status="200",class="2xx",cache="HIT"}'),
      hitRequests + 40,
      'requests_total counts them as HIT',
    )
    t.equal(
      await metric(admin, 'vcdn_shield_sent_bytes_by_cache_total{cache="HIT"}'),
      hitBytes + 40 * bodyOf(1).length,
      'and their bytes as HIT bytes',
    )
    t.equal(origin.count('/assets/hot.bin'), 1, 'the origin was asked once')
    // The access log names local hits as the engine's: one line per request, the same fields.
    const hitLines = (): number =>
      shield.output().match(/"access":true[^\n]*"key":"\/assets\/hot.bin","status":200,"cache":"HIT","bytes":65536,/g)
        ?.length ?? 0
    await waitFor(() => hitLines() >= 40, { what: 'the HIT access lines' })
  })

  t.test('conditionals, Range and HEAD answered in a worker are the engine’s answers', async (t) => {
    // The same origin behind a shield without workers: its main thread's engine answers itself.
    const single = await start(1, 'single')
    t.teardown(() => single.stop())
    await fresh(`${single.url}/assets/hot.bin`)
    const cases: [string, 'GET' | 'HEAD', Record<string, string>][] = [
      ['a Range', 'GET', { range: 'bytes=100-1099' }],
      ['a suffix Range', 'GET', { range: 'bytes=-500' }],
      ['an unsatisfiable Range', 'GET', { range: 'bytes=70000-' }],
      ['an If-None-Match that matches', 'GET', { 'if-none-match': '"v1"' }],
      ['an If-None-Match that does not', 'GET', { 'if-none-match': '"v0"' }],
      ['an If-Modified-Since after Last-Modified', 'GET', { 'if-modified-since': 'Thu, 01 Jan 2026 00:00:00 GMT' }],
      ['a Range whose If-Range does not match', 'GET', { range: 'bytes=0-9', 'if-range': '"v0"' }],
      ['a HEAD', 'HEAD', {}],
    ]
    const roundTrips = await metric(admin, 'vcdn_shield_worker_round_trips_total')
    const local = (await samples(admin, 'vcdn_shield_worker_local_hits_total')).sum
    // The fields that differ between two caches that stored the object at different times.
    const comparable = (h: Record<string, string>): Record<string, string> => {
      const { date: _date, age: _age, ...rest } = h
      return rest
    }
    for (const [what, method, headers] of cases) {
      // Twice on connections of their own: most likely on both workers.
      for (let i = 0; i < 2; i++) {
        const [inWorker, engine] = await Promise.all([
          fresh(hot, method, headers),
          fresh(`${single.url}/assets/hot.bin`, method, headers),
        ])
        sent++
        t.equal(inWorker.status, engine.status, `${what}: ${engine.status}`)
        t.same(comparable(inWorker.headers), comparable(engine.headers), `${what}: the same headers`)
        t.ok(inWorker.body.equals(engine.body), `${what}: the same ${engine.body.length} bytes`)
      }
    }
    await waitFor(async () => (await requestsCounted()) >= sent, { what: 'the workers’ requests counted' })
    t.equal(await metric(admin, 'vcdn_shield_worker_round_trips_total'), roundTrips, 'all answered in the workers')
    t.equal((await samples(admin, 'vcdn_shield_worker_local_hits_total')).sum, local + 2 * cases.length)
  })

  t.test('after a purge no worker answers the old copy', async (t) => {
    const purge = async (body: Record<string, unknown>): Promise<void> => {
      const r = await fetch(`${admin}/purge`, {
        method: 'POST',
        headers: { 'x-vcdn-tier': SECRET, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
      t.equal(r.status, 200, `purge ${JSON.stringify(body)}`)
      await r.arrayBuffer()
    }
    version = 2
    const fetched = origin.count('/assets/hot.bin')
    await purge({ key: '/assets/hot.bin' })
    const answers = await getMany(hot, 12)
    const expected = sha(bodyOf(2))
    t.equal(answers.filter((a) => sha(a.body) === expected).length, 12, 'every answer has the new bytes')
    t.equal(origin.count('/assets/hot.bin'), fetched + 1, 'fetched once more')

    // A soft purge keeps the bytes, stale: the next request revalidates instead of hitting.
    const before = conditionals
    await purge({ key: '/assets/hot.bin', soft: true })
    const afterSoft = await getMany(hot, 1)
    t.equal(afterSoft[0]?.headers['x-cache'], 'REVALIDATED', 'the first answer after a soft purge is revalidated')
    t.equal(conditionals, before + 1, 'one conditional request')
    const later = await getMany(hot, 12)
    t.equal(later.filter((a) => a.headers['x-cache'] === 'HIT' && sha(a.body) === expected).length, 12, 'then HITs')
    t.equal(conditionals, before + 1, 'no other worker revalidates: the coordinator’s copy is fresh again')
  })

  t.test('a target stored as variants is answered in the workers, each request with its own variant', async (t) => {
    const url = `${shield.url}/assets/lang.bin`
    /** `n` GETs per language on connections of their own, once the coordinator counted each one. */
    const round = async (n: number): Promise<{ lang: string; answer: Answer }[]> => {
      const asked = languages.flatMap((lang) => Array.from({ length: n }, () => lang))
      const answers = await Promise.all(
        asked.map(async (lang) => ({ lang, answer: await fresh(url, 'GET', { 'accept-language': lang }) })),
      )
      sent += asked.length
      await waitFor(async () => (await requestsCounted()) >= sent, { what: 'the workers’ requests counted' })
      return answers
    }
    const rightBytes = (answers: { lang: string; answer: Answer }[]): number =>
      answers.filter(({ lang, answer }) => answer.status === 200 && answer.body.equals(langBody(lang))).length
    // Warm both variants in both workers: until two rounds in a row make no round trip (bounded).
    let quiet = 0
    for (let i = 0; i < 30 && quiet < 2; i++) {
      const before = await metric(admin, 'vcdn_shield_worker_round_trips_total')
      const answers = await round(8)
      t.equal(rightBytes(answers), 16, `round ${i}: each language's own bytes`)
      quiet = (await metric(admin, 'vcdn_shield_worker_round_trips_total')) === before ? quiet + 1 : 0
    }
    t.equal(quiet, 2, 'warm: rounds without a round trip')
    const roundTrips = await metric(admin, 'vcdn_shield_worker_round_trips_total')
    const local = (await samples(admin, 'vcdn_shield_worker_local_hits_total')).sum
    const answers = await round(20)
    t.equal(rightBytes(answers), 40, "every answer has its language's bytes")
    t.equal(answers.filter(({ answer }) => answer.headers['x-cache'] === 'HIT').length, 40, 'every one a HIT')
    t.equal(
      await metric(admin, 'vcdn_shield_worker_round_trips_total'),
      roundTrips,
      'no request reached the coordinator',
    )
    t.equal(
      (await samples(admin, 'vcdn_shield_worker_local_hits_total')).sum,
      local + 40,
      'all 40 answered in a worker',
    )
    t.equal(origin.count('/assets/lang.bin'), 2, 'the origin was asked once per language')

    // A purge of the target covers its variants: no worker answers an old variant.
    version = 3
    const purged = await fetch(`${admin}/purge`, {
      method: 'POST',
      headers: { 'x-vcdn-tier': SECRET, 'content-type': 'application/json' },
      body: JSON.stringify({ key: '/assets/lang.bin' }),
    })
    t.equal(purged.status, 200)
    await purged.arrayBuffer()
    t.equal(rightBytes(await round(6)), 12, 'after the purge every answer has the new bytes of its language')
  })

  t.test('a stale copy goes back to the coordinator and is revalidated', async (t) => {
    const url = `${shield.url}/assets/short.bin`
    const before = conditionals
    const roundTrips = await metric(admin, 'vcdn_shield_worker_round_trips_total')
    const local = (await samples(admin, 'vcdn_shield_worker_local_hits_total')).sum
    const answers: Answer[] = []
    // max-age=2: fresh while its age is 0 or 1 s. Requests until one is revalidated (bounded).
    for (let i = 0; i < 100; i++) {
      const [a] = await getMany(url, 1)
      if (a === undefined) break
      answers.push(a)
      if (a.headers['x-cache'] === 'REVALIDATED') break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    t.equal(answers[0]?.headers['x-cache'], 'MISS')
    t.equal(answers.at(-1)?.headers['x-cache'], 'REVALIDATED', 'revalidated once stale')
    const hits = answers.filter((a) => a.headers['x-cache'] === 'HIT')
    t.ok(hits.length > 0, `${hits.length} hits while fresh`)
    t.ok(
      hits.every((a) => Number(a.headers['age']) < 2),
      'no hit is older than max-age: the workers never served it stale',
    )
    t.ok(conditionals > before, 'the origin was asked with its validators')
    t.ok((await metric(admin, 'vcdn_shield_worker_round_trips_total')) > roundTrips, 'through the coordinator')
    t.ok((await samples(admin, 'vcdn_shield_worker_local_hits_total')).sum > local, 'hits while fresh were local')
  })
})
