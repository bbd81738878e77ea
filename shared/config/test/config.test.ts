import t from 'tap'
import { EXAMPLE_SECRET_PLACEHOLDERS, loadConfig, MIN_SECRET_BYTES, type Schema } from '../index.js'
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

t.test(
  'a secret shorter than 32 bytes or a placeholder is refused at its path, from file, map or environment',
  async (t) => {
    const secretSchema = {
      tierSecret: { type: 'string', isRequired: true, isSecret: true, doc: 'tier secret' },
      keys: { type: 'map', default: {}, isSecret: true, doc: 'keys' },
      jwt: { secret: { type: 'string', default: '', isSecret: true, doc: 'jwt secret ("" = off)' } },
    } satisfies Schema
    const good = 'g'.repeat(MIN_SECRET_BYTES)
    const problemsOf = (overrides: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): string => {
      try {
        loadConfig(secretSchema, { overrides, env })
        return ''
      } catch (err) {
        t.ok(isVcdnError(err) && err.code === 'ERR_CONFIG_INVALID')
        return (err as Error).message
      }
    }
    t.equal(problemsOf({ tierSecret: good, keys: { k1: good }, jwt: { secret: good } }), '', '32 bytes pass')
    t.equal(problemsOf({ tierSecret: good }), '', 'an empty secret passes where "" is the default (feature off)')
    const short = 'x'.repeat(MIN_SECRET_BYTES - 1)
    const msg = problemsOf({ tierSecret: short, keys: { k1: good, k2: 'change-me' }, jwt: { secret: 's' } })
    t.match(msg, /tierSecret must be at least 32 bytes/)
    t.match(msg, /keys\.k2 is an example placeholder/)
    t.match(msg, /jwt\.secret must be at least 32 bytes/)
    t.notMatch(msg, /keys\.k1/)
    t.notOk(msg.includes(short), 'the secret is never quoted')
    t.match(problemsOf({ tierSecret: '' }), /tierSecret must be at least 32 bytes/, 'a required secret cannot be empty')
    // Two-byte characters: 16 of them are 32 bytes.
    t.equal(problemsOf({ tierSecret: 'é'.repeat(16) }), '', 'length is counted in bytes')
    for (const placeholder of [...EXAMPLE_SECRET_PLACEHOLDERS, 'CHANGE-ME-shared-by-origin-shields-edges-0123']) {
      t.match(problemsOf({ tierSecret: placeholder }), /tierSecret is an example placeholder/, placeholder)
    }
    t.match(
      problemsOf({ tierSecret: good }, { VCDN_TIER_SECRET: EXAMPLE_SECRET_PLACEHOLDERS[0] }),
      /tierSecret is an example placeholder/,
      'from the environment too',
    )
    t.match(problemsOf({ tierSecret: good }, { VCDN_KEYS: '{"k9":"short"}' }), /keys\.k9 must be at least 32 bytes/)
  },
)
