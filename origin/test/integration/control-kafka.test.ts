// Control events over Kafka (docs/architecture.md §7.4, §9) against a real KRaft broker and the
// built origin, shield, edge and a transcoder: with control.kind = "kafka" a prewarm reaches both
// nodes through the topic; a purge is answered with its offset and each node's acknowledgement; an
// edge that was down (SIGTERM) while a purge was published applies it from its consumer group's
// committed offset when it returns, and nothing before it again; malformed events on the topic are
// counted and skipped, and the nodes go on applying the events after them. A node whose broker is
// unreachable at start serves anyway and keeps retrying.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { connectKafkaTopicProducer } from '../../../shared/bus/index.js'
import {
  freePort,
  makeClip,
  metric,
  startFullStack,
  startKafkaBroker,
  startTier,
  STACK_SECRET,
  tempDir,
  waitFor,
  type KafkaBroker,
  type TierProcess,
} from '../../../shared/testing/index.js'

interface NodeResult {
  id: string
  tier: string
  status: number
  appliedSeq?: number | null
  error?: string
}
interface ControlAnswer {
  nodes: NodeResult[]
  control?: { seq?: number; topic: string; offset?: number | null; error?: string }
}

const TOPIC = 'vcdn.control'
// A busy 2-core machine: room for a consume round, a purge and a heartbeat per node (15 s was
// once too short for the shield at a load of ~10: it acknowledged after the bound).
const ACK_TIMEOUT_MS = 30_000
const APPLY_DEADLINE_MS = 60_000

const events = (node: TierProcess, type: string, result: string): Promise<number> =>
  metric(node.adminUrl, `vcdn_${node.tier}_control_events_total{type="${type}",result="${result}"}`)

t.test('purges and prewarms go over the control topic; a returning edge catches up from its offset', async (t) => {
  const tmp = tempDir('vcdn-ctlkafka-')
  let broker: KafkaBroker | null = null
  let close = async (): Promise<void> => undefined
  t.teardown(async () => {
    await close()
    await broker?.close()
    tmp.remove()
  })
  broker = await startKafkaBroker()
  const control = { kind: 'kafka', kafka: { brokers: broker.bootstrap, topic: TOPIC } }
  const stack = await startFullStack({
    dir: tmp.dir,
    transcoder: { preset: 'ultrafast' },
    registerNodes: false,
    origin: { control, purgeTimeoutMs: ACK_TIMEOUT_MS },
    shield: { control },
    // The edge's own prefetch is off: what is warm is what the prewarm fetched.
    edge: { control, prefetch: { segments: 0, cmcd: false } },
  })
  close = () => stack.close()

  // 10 s in 4 s segments: three segments per rendition, so the third shows where prewarm stops.
  const clip = makeClip(join(tmp.dir, 'clip.mp4'), { seconds: 10, width: 320, height: 240 })
  const id = await stack.upload(clip)
  const video = await stack.settle(id, 180_000)
  t.equal(video.status, 'ready', `transcoded (${JSON.stringify(video.error)})`)
  const base = (video.playback?.hls ?? '').replace(/master\.m3u8$/, '')
  const rendition = video.renditions[0]?.name ?? ''
  const seg = (n: number): string => `${rendition}/seg_0000${n}.m4s`
  const atEdge = async (file: string): Promise<string | null> => {
    const r = await fetch(base + file)
    await r.arrayBuffer()
    t.equal(r.status, 200, `edge ${file}`)
    return r.headers.get('x-cache')
  }
  const atShield = async (file: string): Promise<string | null> => {
    const r = await fetch(`${stack.shield.url}/v/${id}/${file}`, { headers: { 'x-vcdn-tier': STACK_SECRET } })
    await r.arrayBuffer()
    return r.headers.get('x-cache')
  }
  const applied = (node: TierProcess, type: string, n: number): Promise<true> =>
    waitFor(async () => (await events(node, type, 'applied')) >= n || null, {
      timeoutMs: APPLY_DEADLINE_MS,
      what: `${node.tier} to apply ${n} ${type} event(s)`,
    })

  // Prewarm: published once, applied by both nodes on their own.
  const prewarm = await stack.api<ControlAnswer>('POST', `/v1/videos/${id}/prewarm`, { segments: 2 })
  t.equal(prewarm.status, 200)
  t.equal(prewarm.body.control?.topic, TOPIC)
  t.equal(typeof prewarm.body.control?.offset, 'number', `published at offset ${prewarm.body.control?.offset}`)
  t.same(
    prewarm.body.nodes.map((n) => [n.id, n.status]),
    [
      ['edge-1', 202],
      ['shield-1', 202],
    ],
    'every registered node is listed as accepted',
  )
  await applied(stack.shield, 'prewarm', 1)
  await applied(stack.edge, 'prewarm', 1)
  for (const file of [`${rendition}/index.m3u8`, `${rendition}/init.mp4`, seg(1), seg(2)]) {
    t.equal(await atShield(file), 'HIT', `shield: ${file} is warm`)
    t.equal(await atEdge(file), 'HIT', `edge: ${file} is warm (it never saw the video)`)
  }
  t.equal(await atEdge(seg(3)), 'MISS', 'not past the first two segments')

  // A purge with every node up: published, and acknowledged by both through their heartbeats.
  const live = await stack.api<ControlAnswer>('POST', '/v1/purge', { key: `/v/${id}/${seg(1)}` }, stack.adminToken)
  t.equal(live.status, 200)
  const liveSeq = live.body.control?.seq ?? 0
  t.ok(liveSeq > 0, `purge generation ${liveSeq}`)
  t.equal(typeof live.body.control?.offset, 'number', 'published with its offset')
  t.same(
    live.body.nodes.map((n) => [n.id, n.status, n.appliedSeq]),
    [
      ['edge-1', 200, liveSeq],
      ['shield-1', 200, liveSeq],
    ],
    'both nodes acknowledged the purge',
  )
  t.equal(await atEdge(seg(1)), 'MISS', 'the purged segment is fetched again')
  // Stored once its fill commits (after the answer): only then is "it stayed cached" a fair question.
  await waitFor(async () => (await atEdge(seg(1))) === 'HIT' || null, { what: 'the refetched segment stored' })

  // The edge is stopped (SIGTERM to its pid) and a purge is published while it is away.
  await stack.edge.stop()
  const missed = await stack.api<ControlAnswer>('POST', '/v1/purge', { key: `/v/${id}/${seg(2)}` }, stack.adminToken)
  t.equal(missed.status, 200)
  const missedSeq = missed.body.control?.seq ?? 0
  t.equal(missedSeq, liveSeq + 1, 'the next generation')
  t.same(
    missed.body.nodes.map((n) => [n.id, n.status, n.error]),
    [
      ['edge-1', 0, 'unacknowledged'],
      ['shield-1', 200, undefined],
    ],
    'the shield acknowledged; the edge did not, within the bound',
  )
  // Back without registration: only its consumer group's committed offset can bring the purge.
  const edge = await stack.restartEdge({ register: { id: 'edge-1', isEnabled: false } })
  await applied(edge, 'purge', 1)
  t.equal(
    await events(edge, 'purge', 'applied'),
    1,
    'exactly the purge it missed: it resumed after its committed offset',
  )
  t.equal(await events(edge, 'prewarm', 'applied'), 0, 'and did not prewarm again')
  // The log line is written beside the counter the wait above read: wait for it rather than racing it.
  const purgedLine = new RegExp(`"seq":${missedSeq}[^\\n]*control event: purged`)
  await waitFor(() => purgedLine.test(edge.output()), { timeoutMs: 15_000, what: 'the purge log line' }).catch(
    () => undefined,
  )
  t.match(edge.output(), purgedLine, 'logged with its generation')
  t.equal(await atEdge(seg(2)), 'MISS', 'the purge it missed was applied')
  for (const file of [seg(1), seg(3), `${rendition}/init.mp4`]) {
    t.equal(await atEdge(file), 'HIT', `${file} stayed cached`)
  }

  // Malformed events: counted and skipped by both nodes, which stay up and apply what follows.
  const producer = await connectKafkaTopicProducer({
    brokers: broker.bootstrap,
    topic: TOPIC,
    partitions: 1,
    timeoutMs: 30_000,
  })
  try {
    await producer.send('x', Buffer.from('not json'))
    await producer.send('x', Buffer.from(JSON.stringify({ v: 1, type: 'purge', seq: 'one', atMs: 1 })))
    await producer.send(
      'x',
      Buffer.from(
        JSON.stringify({ v: 1, type: 'purge', seq: 9999, target: { prefix: '/etc/' }, mode: 'hard', atMs: 1 }),
      ),
    )
  } finally {
    await producer.close()
  }
  const after = await stack.api<ControlAnswer>('POST', '/v1/purge', { key: `/v/${id}/${seg(1)}` }, stack.adminToken)
  t.equal(after.status, 200)
  t.equal(after.body.nodes.find((n) => n.id === 'shield-1')?.status, 200, 'the shield acknowledged the next purge')
  await applied(edge, 'purge', 2)
  for (const node of [stack.shield, edge]) {
    t.equal(await events(node, 'unknown', 'malformed'), 2, `${node.tier}: two unreadable events counted`)
    t.equal(await events(node, 'purge', 'malformed'), 1, `${node.tier}: a purge outside the content namespace counted`)
    t.equal(node.proc.exitCode, null, `${node.tier} is still running`)
  }
  t.equal(await atEdge(seg(1)), 'MISS', 'the purge after the malformed events was applied')
  t.equal(await atEdge(`${rendition}/init.mp4`), 'HIT', 'the edge serves on')

  // With registration on (the default) both catch-ups run and do not fight: the purge log replays
  // what the edge missed as it registers, and the same purge read from Kafka is applied at most once
  // more (skipped when the registration came first); the generation then follows the topic again,
  // so the edge acknowledges the next purge.
  await edge.stop()
  const init = `${rendition}/init.mp4`
  const away = await stack.api<ControlAnswer>('POST', '/v1/purge', { key: `/v/${id}/${init}` }, stack.adminToken)
  t.equal(away.status, 200)
  const registered = await stack.restartEdge({ register: { id: 'edge-1' } })
  await waitFor(
    async () =>
      (await events(registered, 'purge', 'applied')) + (await events(registered, 'purge', 'skipped')) >= 1 || null,
    { timeoutMs: APPLY_DEADLINE_MS, what: 'the returning edge to read the purge from Kafka' },
  )
  t.equal(await atEdge(init), 'MISS', 'the purge made while it was away was applied')
  t.equal(await atEdge(seg(3)), 'HIT', 'and nothing else')
  const next = await stack.api<ControlAnswer>('POST', '/v1/purge', { key: `/v/${id}/${seg(3)}` }, stack.adminToken)
  t.same(
    next.body.nodes.map((n) => [n.id, n.status, n.appliedSeq]),
    [
      ['edge-1', 200, next.body.control?.seq],
      ['shield-1', 200, next.body.control?.seq],
    ],
    'both nodes acknowledged the next purge with its generation',
  )
})

t.test('a node whose broker is unreachable at start serves and keeps retrying', async (t) => {
  const tmp = tempDir('vcdn-ctlkafka-down-')
  t.teardown(tmp.remove)
  const deadPort = await freePort()
  const edge = await startTier(
    'edge',
    {
      tierSecret: STACK_SECRET,
      origin: 'http://127.0.0.1:9',
      signingKeys: { k1: 'stack-signing-key-0123456789abcdef' },
      cache: { dir: join(tmp.dir, 'edge') },
      register: { isEnabled: false },
      control: { kind: 'kafka', kafka: { brokers: `127.0.0.1:${deadPort}`, timeoutMs: 500 } },
    },
    { dir: tmp.dir },
  )
  t.teardown(() => edge.stop())
  await waitFor(() => (edge.output().split('cannot reach Kafka').length > 2 ? true : null), {
    timeoutMs: APPLY_DEADLINE_MS,
    what: 'two failed connection attempts logged',
  })
  const health = await fetch(`${edge.adminUrl}/metrics`)
  await health.arrayBuffer()
  t.equal(health.status, 200, 'the admin listener answers')
  const refused = await fetch(`${edge.url}/v/x/master.m3u8`)
  await refused.arrayBuffer()
  t.equal(refused.status, 403, 'the public listener answers (a request without a token is refused)')
  t.equal(edge.proc.exitCode, null, 'the edge is still running')
})

t.test(
  'with the broker down a purge is answered as unpublished and still reaches every node by the purge log',
  async (t) => {
    const tmp = tempDir('vcdn-ctlkafka-nobroker-')
    t.teardown(tmp.remove)
    const control = { kind: 'kafka', kafka: { brokers: `127.0.0.1:${await freePort()}`, timeoutMs: 1000 } }
    // Heartbeats every second: the purge log's way to the nodes is quick to see.
    const node = { control, register: { heartbeatS: 1 } }
    const stack = await startFullStack({
      dir: tmp.dir,
      transcoders: 0,
      registerNodes: false,
      origin: { control },
      shield: { ...node, register: { id: 'shield-1', heartbeatS: 1 } },
      edge: { ...node, register: { id: 'edge-1', heartbeatS: 1 } },
    })
    t.teardown(() => stack.close())
    const purged = await stack.api<ControlAnswer>('POST', '/v1/purge', { prefix: '/v/gone/' }, stack.adminToken)
    t.equal(purged.status, 200, 'the purge is answered')
    const seq = purged.body.control?.seq ?? 0
    t.same(purged.body.control, { seq, topic: TOPIC, error: 'ERR_CONTROL_UNAVAILABLE' }, 'not published, and says so')
    t.same(
      purged.body.nodes.map((n) => [n.id, n.status, n.error]),
      [
        ['edge-1', 0, 'ERR_CONTROL_UNAVAILABLE'],
        ['shield-1', 0, 'ERR_CONTROL_UNAVAILABLE'],
      ],
      'no node was reached by it',
    )
    for (const dir of ['edge', 'shield']) {
      await waitFor(
        () => {
          try {
            return (JSON.parse(readFileSync(join(tmp.dir, dir, 'purge-generation.json'), 'utf8')) as { seq: number })
              .seq === seq
              ? true
              : null
          } catch {
            return null
          }
        },
        { timeoutMs: APPLY_DEADLINE_MS, what: `the ${dir} to reach generation ${seq}` },
      )
      t.pass(`the ${dir} applied it from the purge log at a heartbeat`)
    }
  },
)
