// Every registered code is documented in shared/errors/README.md with its status, and the README
// documents no code that does not exist (fastify's error registry discipline).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ERRORS, VcdnError, errorBody, toCode } from '../index.js'

const readme = readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8')
const documented = new Map<string, number>()
for (const m of readme.matchAll(/^\|\s*`(ERR_[A-Z0-9_]+)`\s*\|\s*(\d{3})\s*\|/gm)) documented.set(m[1]!, Number(m[2]))

t.test('every code in the registry is documented with its status', async (t) => {
  for (const [code, { status }] of Object.entries(ERRORS)) t.equal(documented.get(code), status, code)
})

t.test('the README documents only codes that exist', async (t) => {
  for (const code of documented.keys()) t.ok(code in ERRORS, `${code} exists`)
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
