// The cache-tests suite's client in a process of its own (its results live in module state, one
// cache per process): `node cache-tests-client.js <baseUrl> <outFile> <deadlineMs> [testId…]`.
// Runs the suite's tests (all, or the ids given) with the suite's runner and node-fetch, as its
// cli.mjs does, and writes { results, isComplete, ms } to outFile — at the end, or at the deadline
// with what finished by then (a cache that never answers would otherwise hold the run forever).
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { CACHE_TESTS_DIR } from './cache-tests.js'

interface Suite {
  tests: { id: string }[]
}
interface Runner {
  runTests(tests: Suite[], fetch: unknown, isBrowserCache: boolean, baseUrl: string): Promise<void>
  getResults(): Record<string, unknown>
}

const [baseUrl, outFile, deadlineArg, ...ids] = process.argv.slice(2)
const deadlineMs = Number(deadlineArg)
if (baseUrl === undefined || outFile === undefined || !(deadlineMs > 0)) {
  process.stderr.write('usage: cache-tests-client <baseUrl> <outFile> <deadlineMs> [testId…]\n')
  process.exit(2)
}
const importSuite = async <T>(...parts: string[]): Promise<T> =>
  (await import(pathToFileURL(join(CACHE_TESTS_DIR, ...parts)).href)) as T

const runner = await importSuite<Runner>('client', 'runner.mjs')
const suites = [
  ...(await importSuite<{ default: Suite[] }>('tests', 'index.mjs')).default,
  (await importSuite<{ default: Suite }>('tests', 'surrogate-control.mjs')).default,
]
// node-fetch 2, the suite's own dependency (cli.mjs uses it): resolved from the suite's package.
const fetch = createRequire(join(CACHE_TESTS_DIR, 'package.json'))('node-fetch') as unknown
const only = new Set(ids)
const selected = only.size === 0 ? suites : suites.map((s) => ({ ...s, tests: s.tests.filter((t) => only.has(t.id)) }))

const startedMs = Date.now()
const write = (isComplete: boolean): void => {
  const run = { results: runner.getResults(), isComplete, ms: Date.now() - startedMs }
  writeFileSync(outFile, JSON.stringify(run))
}
const deadline = setTimeout(() => {
  write(false)
  process.exit(0)
}, deadlineMs)
// The base URL must not end in '/': the suite appends '/test/…'.
await runner.runTests(selected, fetch, false, baseUrl.replace(/\/+$/, ''))
clearTimeout(deadline)
write(true)
process.exit(0)
