// The reference (docs/config.md, `vcdn <tier> --help`) says what the loader does: the environment
// variable it names for a key is the one the loader reads, and each fact of the table is shown.
import t from 'tap'
import { configKeys, loadConfig, renderKeyHelp, renderKeyTable, type Schema } from '../index.js'

const schema = {
  listen: { port: { type: 'integer', default: 0, min: 0, max: 65535, doc: 'port' } },
  cache: {
    maxBytes: { type: 'integer', default: 10 * 1024 ** 3, min: 1024 * 1024, unit: 'bytes', doc: 'disk budget' },
    playlistTtlMs: { type: 'integer', min: 0, unit: 'ms', doc: 'unset: heuristics' },
  },
  tierSecret: { type: 'string', isRequired: true, isSecret: true, doc: 'shared secret' },
  query: { type: 'string', default: 'keep', oneOf: ['keep', 'ignore'], doc: 'keep | ignore the query' },
  shields: { type: 'string[]', default: [], min: 1, doc: 'shield URLs' },
  isOn: { type: 'boolean', default: true, doc: 'on' },
} satisfies Schema

const SECRET = 'reference-test-secret-0123456789abcdef'

t.test('the environment variable named for each key is the one the loader reads', async (t) => {
  const values: Record<string, [string, unknown]> = {
    'listen.port': ['8080', 8080],
    'cache.maxBytes': ['2097152', 2097152],
    'cache.playlistTtlMs': ['5000', 5000],
    tierSecret: [SECRET, SECRET],
    query: ['ignore', 'ignore'],
    shields: ['http://a,http://b', ['http://a', 'http://b']],
    isOn: ['false', false],
  }
  const keys = configKeys(schema)
  t.same(
    keys.map((k) => k.path),
    Object.keys(values),
    'every key, in table order',
  )
  for (const key of keys) {
    const [raw, expected] = values[key.path]!
    const env: NodeJS.ProcessEnv = { [key.env!]: raw }
    if (key.path !== 'tierSecret') env['VCDN_TIER_SECRET'] = SECRET
    if (key.path !== 'shields') env['VCDN_SHIELDS'] = 'http://c'
    const config = loadConfig<Record<string, unknown>>(schema, { env })
    const got = key.path.split('.').reduce<unknown>((o, p) => (o as Record<string, unknown>)[p], config)
    t.same(got, expected, `${key.env} sets ${key.path}`)
  }
  t.equal(keys.find((k) => k.path === 'cache.maxBytes')?.env, 'VCDN_CACHE_MAX_BYTES')
})

t.test('the markdown table shows type, default, bounds, unit, environment and doc of each key', async (t) => {
  const lines = renderKeyTable(configKeys(schema)).split('\n')
  t.equal(lines[0], '| key | type | default | bounds | unit | environment | doc |')
  t.equal(lines.length, 2 + 7)
  t.equal(lines[2], '| `listen.port` | integer | `0` | 0–65535 |  | `VCDN_LISTEN_PORT` | port |')
  t.equal(
    lines[3],
    '| `cache.maxBytes` | integer | `10737418240` (10 GiB) | ≥ 1048576 (1 MiB) | bytes | `VCDN_CACHE_MAX_BYTES` | disk budget |',
  )
  t.equal(
    lines[4],
    '| `cache.playlistTtlMs` | integer | unset | ≥ 0 | ms | `VCDN_CACHE_PLAYLIST_TTL_MS` | unset: heuristics |',
  )
  t.equal(lines[5], '| `tierSecret` | string | required |  | secret, ≥ 32 bytes | `VCDN_TIER_SECRET` | shared secret |')
  // A `|` inside a cell is escaped so the row keeps its columns.
  t.equal(
    lines[6],
    '| `query` | string (keep \\| ignore) | `"keep"` |  |  | `VCDN_QUERY` | keep \\| ignore the query |',
  )
  t.equal(lines[7], '| `shields` | string[] | `[]` | ≥ 1 entries |  | `VCDN_SHIELDS` | shield URLs |')
})

t.test('the help text gives each key its facts on one line and its doc on the next', async (t) => {
  const lines = renderKeyHelp(configKeys(schema))
  t.equal(lines.length, 14)
  t.equal(lines[0], '  listen.port  (integer; default 0; 0–65535; env VCDN_LISTEN_PORT)')
  t.equal(lines[1], '      port')
  t.equal(
    lines[2],
    '  cache.maxBytes  (integer, bytes; default 10737418240 (10 GiB); ≥ 1048576 (1 MiB); env VCDN_CACHE_MAX_BYTES)',
  )
  t.equal(lines[4], '  cache.playlistTtlMs  (integer, ms; default unset; ≥ 0; env VCDN_CACHE_PLAYLIST_TTL_MS)')
  t.equal(lines[6], '  tierSecret  (string, secret, ≥ 32 bytes; required; env VCDN_TIER_SECRET)')
})
