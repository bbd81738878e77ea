// Control events (docs/architecture.md §9) as tables: a message value → the event a node applies,
// or the reason it is skipped as malformed (never a throw); and the control config's checks.
import t from 'tap'
import { controlProblems, MAX_CONTROL_PREWARM_KEYS, parseControlEvent, type ControlConfig } from '../index.js'

const value = (x: unknown): Buffer => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x))
const purge = { v: 1, type: 'purge', seq: 7, target: { key: '/v/abc/240p/seg_00001.m4s' }, mode: 'hard', atMs: 5 }
const prewarm = { v: 1, type: 'prewarm', id: 'e-1', videoId: 'abc', keys: ['/v/abc/master.m3u8'], atMs: 5 }

t.test('well-formed purges and prewarms parse to the event a node applies', async (t) => {
  t.same(parseControlEvent(value(purge)), purge, 'a hard purge of a key')
  const soft = { ...purge, target: { prefix: '/v/abc/' }, mode: 'soft' }
  t.same(parseControlEvent(value(soft)), soft, 'a soft purge of a prefix')
  t.same(parseControlEvent(value(prewarm)), prewarm, 'a prewarm')
  t.same(parseControlEvent(value({ ...purge, extra: 1 })), purge, 'unknown fields are dropped (a newer origin)')
})

t.test('a malformed event is a reason to skip it, never a throw', async (t) => {
  const cases: [string, Buffer | null, string][] = [
    ['no value (a tombstone)', null, 'no value'],
    ['not JSON', value('{"v":1,'), 'not JSON'],
    ['an array', value([purge]), 'not an object'],
    ['JSON null', value('null'), 'not an object'],
    ['another version', value({ ...purge, v: 2 }), 'unknown version'],
    ['an unknown type', value({ ...purge, type: 'reboot' }), 'unknown type'],
    ['no time', value({ ...purge, atMs: 'now' }), 'atMs'],
    ['a seq as text', value({ ...purge, seq: '7' }), 'seq'],
    ['seq 0 (generations start at 1)', value({ ...purge, seq: 0 }), 'seq'],
    ['a fractional seq', value({ ...purge, seq: 1.5 }), 'seq'],
    ['an unknown mode', value({ ...purge, mode: 'gentle' }), 'mode'],
    ['no target', value({ ...purge, target: null }), 'target'],
    ['both key and prefix', value({ ...purge, target: { key: '/v/a', prefix: '/v/' } }), 'target'],
    ['a relative key', value({ ...purge, target: { key: 'v/a' } }), 'target'],
    ['an over-long key', value({ ...purge, target: { key: `/v/${'a'.repeat(2048)}` } }), 'target'],
    ['a prewarm without id', value({ ...prewarm, id: '' }), 'id'],
    ['a prewarm without video id', value({ ...prewarm, videoId: 3 }), 'videoId'],
    ['a prewarm key that is not a path', value({ ...prewarm, keys: ['/v/a', 42] }), 'keys'],
    [
      'too many prewarm keys',
      value({ ...prewarm, keys: Array.from({ length: MAX_CONTROL_PREWARM_KEYS + 1 }, () => '/v/a') }),
      'keys',
    ],
  ]
  for (const [name, v, reason] of cases) t.same(parseControlEvent(v), { malformed: reason }, name)
})

t.test('control config: brokers and topic are checked only with kind kafka', async (t) => {
  const kafka = (brokers: string, topic = 'vcdn.control'): ControlConfig => ({
    kind: 'kafka',
    kafka: { brokers, topic, timeoutMs: 1000 },
  })
  t.same(controlProblems({ ...kafka(''), kind: 'http' }), [], 'http needs no brokers')
  t.same(controlProblems(kafka('127.0.0.1:9092')), [])
  t.same(controlProblems(kafka('a:9092,b:9093')), [])
  t.match(controlProblems(kafka('')), [/control\.kafka\.brokers/], 'kafka needs brokers')
  t.match(controlProblems(kafka('a:9092, b:9093')), [/control\.kafka\.brokers/], 'no spaces in the list')
  t.match(controlProblems(kafka('a:9092', 'bad topic')), [/control\.kafka\.topic/])
})
