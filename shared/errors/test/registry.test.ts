// Every registered code is documented in shared/errors/README.md with its status, and the README
// documents no code that does not exist (fastify's error registry discipline). The registry and
// the source agree both ways: every registered code is used by some code path or reserved with a
// reason, and every code string the source uses is registered.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ERRORS, RESERVED_CODES, VcdnError, errorBody, toCode } from '../index.js'

const readme = readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8')
const documented = new Map<string, number>()
for (const m of readme.matchAll(/^\|\s*`(ERR_[A-Z0-9_]+)`\s*\|\s*(\d{3})\s*\|/gm)) documented.set(m[1]!, Number(m[2]))

t.test('every code in the registry is documented with its status', async (t) => {
  for (const [code, { status }] of Object.entries(ERRORS)) t.equal(documented.get(code), status, code)
})

t.test('the README documents only codes that exist', async (t) => {
  for (const code of documented.keys()) t.ok(code in ERRORS, `${code} exists`)
})

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
// The code that runs in production: every tier and shared module and the CLI; not tests, test
// helpers or benchmarks.
const SOURCE_ROOTS = ['shared', 'origin', 'shield', 'edge', 'transcoder', 'cli']
const NOT_SOURCE = new Set(['test', 'testing', 'node_modules', 'dist'])

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const rel = join(dir, entry.name)
    if (entry.isDirectory()) {
      if (!NOT_SOURCE.has(entry.name)) sourceFiles(rel, out)
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) out.push(rel)
  }
  return out
}

/**
 * Code → the files that use it: a string literal that is exactly an `ERR_…` code (`'ERR_X'`, as
 * thrown, sent, or recorded as a job's error). Registry keys are identifiers and prose that merely
 * names a code is not a literal of its own, so neither counts.
 */
function codesUsedInSource(): Map<string, string[]> {
  const used = new Map<string, string[]>()
  for (const file of SOURCE_ROOTS.flatMap((root) => sourceFiles(root))) {
    for (const m of readFileSync(join(ROOT, file), 'utf8').matchAll(/(['"`])(ERR_[A-Z0-9_]+)\1/g)) {
      used.set(m[2]!, [...(used.get(m[2]!) ?? []), file])
    }
  }
  return used
}

t.test('every registered code is used in the source or reserved with a reason', async (t) => {
  const used = codesUsedInSource()
  t.ok(used.size > 20, 'the scan finds the codes the source uses')
  for (const code of Object.keys(ERRORS) as (keyof typeof ERRORS)[]) {
    const reason = RESERVED_CODES[code]
    if (reason === undefined) t.ok(used.has(code), `${code} is used (or listed in RESERVED_CODES with why)`)
    else {
      t.notOk(
        used.has(code),
        `${code} is reserved and unused (used in ${used.get(code)?.join(', ')}: drop it from RESERVED_CODES)`,
      )
      t.ok(reason.length > 20, `${code}: the reason it is kept`)
    }
  }
})

t.test('every code string the source uses is registered', async (t) => {
  for (const [code, files] of codesUsedInSource()) t.ok(code in ERRORS, `${code} (${files.join(', ')}) is registered`)
})

t.test('the README lists exactly the reserved codes', async (t) => {
  const section = readme.split('<!-- reserved -->')[1]?.split('<!-- /reserved -->')[0] ?? ''
  const listed = [...section.matchAll(/^- `(ERR_[A-Z0-9_]+)`: /gm)].map((m) => m[1])
  t.same(listed, Object.keys(RESERVED_CODES))
})

t.test('codes are ERR_ names in upper snake case and map to 4xx/5xx', async (t) => {
  for (const [code, { status, message }] of Object.entries(ERRORS)) {
    t.match(code, /^ERR_[A-Z0-9]+(_[A-Z0-9]+)*$/)
    t.ok(status >= 400 && status <= 599, `${code} status`)
    t.ok(message.length > 0)
  }
})

t.test('error bodies carry the code and the public message, never the cause', async (t) => {
  const err = new VcdnError('ERR_UPSTREAM_CONNECT', 'connect ECONNREFUSED 10.0.0.1:8080', {
    cause: new Error('secret detail'),
  })
  t.equal(err.status, 502)
  t.equal(toCode(err), 'ERR_UPSTREAM_CONNECT')
  t.equal(toCode(new Error('x')), 'ERR_INTERNAL')
  const body = errorBody(err.code)
  t.same(JSON.parse(body), { error: { code: 'ERR_UPSTREAM_CONNECT', message: 'upstream unreachable' } })
  t.notMatch(body, /10\.0\.0\.1|secret/)
})
