// The engine as tables (Varnish / Traffic Server style): request → upstream reply → expected
// status, x-cache, headers, body and upstream count, for rows that move the injected clock
// (freshness, validation, stale serving, negative caching) and for the query policies. The rows
// that need no clock are the cache contract (contract.ts), run here and against the processes.
import t from 'tap'
import { runCacheTable, type CacheCase } from './contract.js'
import { engineSubject } from './fixtures/contract-engine.js'

const BODY = 'table body 0123456789'
const DATE = 'Wed, 01 Jan 2025 00:00:00 GMT'
const LAST_MODIFIED = 'Tue, 31 Dec 2024 00:00:00 GMT'

const CLOCK_ROWS: readonly CacheCase[] = [
  {
    name: 'max-age: hits while fresh with Age counting the resident time, then fetched again',
    replies: [{ status: 200, headers: { 'cache-control': 'max-age=60' }, body: BODY }],
    steps: [
      { expect: { status: 200, cache: 'MISS', body: BODY, headers: { age: '0' } } },
      { afterSec: 30, expect: { status: 200, cache: 'HIT', body: BODY, headers: { age: '30' } } },
      { afterSec: 31, expect: { status: 200, cache: 'MISS', body: BODY } },
    ],
    upstream: 2,
  },
  {
    name: "the upstream's Age counts against max-age",
    replies: [{ status: 200, headers: { 'cache-control': 'max-age=60', age: '50' }, body: BODY }],
    steps: [
      { expect: { status: 200, cache: 'MISS', body: BODY } },
      { afterSec: 5, expect: { status: 200, cache: 'HIT', headers: { age: '55' } } },
      { afterSec: 6, expect: { status: 200, cache: 'MISS' } },
    ],
    upstream: 2,
  },
  {
    name: 'an expired answer with an ETag is revalidated; the 304 makes it fresh again',
    replies: [
      { status: 200, headers: { 'cache-control': 'max-age=60', etag: '"a"' }, body: BODY },
      { status: 304, headers: { 'cache-control': 'max-age=60', etag: '"a"' } },
    ],
    steps: [
      { expect: { status: 200, cache: 'MISS', body: BODY } },
      { afterSec: 61, expect: { status: 200, cache: 'REVALIDATED', body: BODY } },
      { afterSec: 30, expect: { status: 200, cache: 'HIT', body: BODY } },
    ],
    upstream: 2,
    upstreamSaw: [{ 'if-none-match': null }, { 'if-none-match': '"a"' }],
  },
  {
    name: 'an expired answer with Last-Modified is revalidated with If-Modified-Since',
    replies: [
      { status: 200, headers: { 'cache-control': 'max-age=60', 'last-modified': LAST_MODIFIED }, body: BODY },
      { status: 304, headers: { 'cache-control': 'max-age=60' } },
    ],
    steps: [
      { expect: { status: 200, cache: 'MISS', body: BODY } },
      {
        afterSec: 61,
        expect: { status: 200, cache: 'REVALIDATED', body: BODY, headers: { 'last-modified': LAST_MODIFIED } },
      },
    ],
    upstream: 2,
    upstreamSaw: [{ 'if-modified-since': null }, { 'if-modified-since': LAST_MODIFIED }],
  },
  {
    name: 'a HEAD and a Range on an expired answer are revalidated like a GET',
    replies: [
      { status: 200, headers: { 'cache-control': 'max-age=60', etag: '"h"' }, body: BODY },
      { status: 304, headers: { 'cache-control': 'max-age=60', etag: '"h"' } },
    ],
    steps: [
      { expect: { status: 200, cache: 'MISS', body: BODY } },
      { afterSec: 61, method: 'HEAD', expect: { status: 200, cache: 'REVALIDATED', body: '' } },
      {
        afterSec: 61,
        headers: { range: 'bytes=0-4' },
        expect: { status: 206, cache: 'REVALIDATED', body: BODY.slice(0, 5) },
      },
    ],
    upstream: 3,
    upstreamSaw: [{ ':method': 'GET' }, { ':method': 'GET', range: null }, { range: null }],
  },
  {
    name: 's-maxage wins over max-age in a shared cache',
    replies: [{ status: 200, headers: { 'cache-control': 'max-age=0, s-maxage=60' }, body: BODY }],
    steps: [
      { expect: { status: 200, cache: 'MISS' } },
      { afterSec: 30, expect: { status: 200, cache: 'HIT' } },
      { afterSec: 31, expect: { status: 200, cache: 'MISS' } },
    ],
    upstream: 2,
  },
  {
    name: 'CDN-Cache-Control wins over Cache-Control (RFC 9213)',
    replies: [{ status: 200, headers: { 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=60' }, body: BODY }],
    steps: [
      { expect: { status: 200, cache: 'MISS', headers: { 'cache-control': 'no-store' } } },
      { afterSec: 30, expect: { status: 200, cache: 'HIT' } },
    ],
    upstream: 1,
  },
  {
    name: 'Expires gives freshness relative to Date',
    replies: [{ status: 200, headers: { date: DATE, expires: 'Wed, 01 Jan 2025 00:01:00 GMT' }, body: BODY }],
    steps: [
      { expect: { status: 200, cache: 'MISS' } },
      { afterSec: 30, expect: { status: 200, cache: 'HIT' } },
      { afterSec: 31, expect: { status: 200, cache: 'MISS' } },
    ],
    upstream: 2,
  },
  {
    name: 'stale-if-error answers with the stale copy when the upstream fails with a 5xx',
    replies: [
      { status: 200, headers: { 'cache-control': 'max-age=60, stale-if-error=600' }, body: BODY },
      { status: 503, body: 'down' },
    ],
    steps: [
      { expect: { status: 200, cache: 'MISS', body: BODY } },
      { afterSec: 61, expect: { status: 200, cache: 'STALE', body: BODY } },
    ],
    upstream: 2,
  },
  {
    name: 'past stale-while-revalidate a request waits for the fresh answer',
    replies: [
      { status: 200, headers: { 'cache-control': 'max-age=60, stale-while-revalidate=30' }, body: BODY },
      { status: 200, headers: { 'cache-control': 'max-age=60' }, body: 'fresh again' },
    ],
    steps: [
      { expect: { status: 200, cache: 'MISS', body: BODY } },
      { afterSec: 100, expect: { status: 200, cache: 'MISS', body: 'fresh again' } },
    ],
    upstream: 2,
  },
  {
    name: 'a 404 without freshness of its own is stored for negativeTtlMs (10 s), then asked again',
    replies: [{ status: 404, body: 'gone' }],
    steps: [
      { expect: { status: 404, cache: 'MISS', body: 'gone' } },
      { afterSec: 5, expect: { status: 404, cache: 'HIT', body: 'gone' } },
      { afterSec: 6, expect: { status: 404, cache: 'MISS', body: 'gone' } },
    ],
    upstream: 2,
    needsMemoryTier: true,
  },
  {
    name: 'a 404 that states its own freshness is obeyed',
    replies: [{ status: 404, headers: { 'cache-control': 'max-age=60' }, body: 'gone' }],
    steps: [{ expect: { status: 404, cache: 'MISS' } }, { afterSec: 30, expect: { status: 404, cache: 'HIT' } }],
    upstream: 1,
    needsMemoryTier: true,
  },
]

const QUERY_ROWS: readonly CacheCase[] = [
  {
    name: 'with a parameter list only the listed parameters make the key and reach the upstream',
    replies: [{ status: 200, headers: { 'cache-control': 'max-age=60' }, body: BODY }],
    steps: [
      { query: 'a=1&b=2', expect: { status: 200, cache: 'MISS' } },
      { query: 'b=3&a=1', expect: { status: 200, cache: 'HIT' } },
      { query: 'a=1&token=abc', expect: { status: 200, cache: 'HIT' } },
      { query: 'a=2', expect: { status: 200, cache: 'MISS' } },
    ],
    upstream: 2,
    upstreamSaw: [{ ':query': 'a=1' }, { ':query': 'a=2' }],
  },
]

const IGNORE_ROWS: readonly CacheCase[] = [
  {
    name: 'with the query ignored every query string is the same object and none reaches the upstream',
    replies: [{ status: 200, headers: { 'cache-control': 'max-age=60' }, body: BODY }],
    steps: [
      { query: 'a=1', expect: { status: 200, cache: 'MISS' } },
      { query: 'a=2', expect: { status: 200, cache: 'HIT' } },
      { expect: { status: 200, cache: 'HIT' } },
    ],
    upstream: 1,
    upstreamSaw: [{ ':query': '' }],
  },
]

void t.test('the engine keeps the rows that move the clock', async (t) => {
  runCacheTable(t, CLOCK_ROWS, await engineSubject(t, {}, true), '/table/clock')
})

void t.test('the engine with its disk tier alone keeps the rows that move the clock', async (t) => {
  runCacheTable(t, CLOCK_ROWS, await engineSubject(t, { memoryMaxBytes: 1 }, false), '/table/clock-disk')
})

void t.test('the engine keeps the query policy rows', async (t) => {
  runCacheTable(t, QUERY_ROWS, await engineSubject(t, { query: ['a'] }, true), '/table/query-list')
  runCacheTable(t, IGNORE_ROWS, await engineSubject(t, { query: 'ignore' }, true), '/table/query-ignore')
})
