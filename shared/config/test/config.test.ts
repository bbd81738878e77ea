import t from 'tap'
import { loadConfig, type Schema } from '../index.js'
import { isVcdnError } from '../../errors/index.js'

const schema = {
  listen: { port: { type: 'integer', default: 0, min: 0, max: 65535, doc: 'port' } },
  name: { type: 'string', isRequired: true, doc: 'name' },
  ttlMs: { type: 'integer', default: 1000, min: 1, doc: 'ttl' },
  list: { type: 'string[]', default: [], doc: 'list' },
} satisfies Schema

t.test('defaults < overrides < environment, and the result is frozen', async (t) => {
  const c = loadConfig<{ listen: { port: number }; name: string; ttlMs: number }>(schema, {
    overrides: { name: 'a', ttlMs: 5 },
    env: { VCDN_TTL_MS: '7', VCDN_LISTEN_PORT: '8080' },
  })
  t.equal(c.name, 'a')
  t.equal(c.ttlMs, 7)
  t.equal(c.listen.port, 8080)
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.listen))
})

t.test('every problem is reported at once, naming each path', async (t) => {
  try {
    loadConfig(schema, { overrides: { listen: { port: 70000 }, ttlMs: 0, bogus: 1, list: [1] }, env: {} })
    t.fail('should throw')
  } catch (err) {
    t.ok(isVcdnError(err) && err.code === 'ERR_CONFIG_INVALID')
    const msg = (err as Error).message
    for (const part of ['listen.port', 'ttlMs', 'bogus is not a known key', 'name is required', 'list must be']) {
      t.match(msg, part)
    }
  }
})
