import t from 'tap'
import { ScriptedOrigin } from '../../shared/testing/index.js'
import type { JobResult } from '../../shared/bus/index.js'
import { HttpJobSource } from '../src/origin-client.js'

const RESULT: JobResult = { durationS: 4, renditions: [], thumbnails: null }

t.test('a completion the origin answers with 503 is sent again until it is taken', async (t) => {
  const origin = new ScriptedOrigin()
  const answers = [503, 503, 200]
  origin.routes.set('/v1/jobs/j1/complete', (_req, res) => {
    const status = answers.shift() ?? 500
    res.writeHead(status, { 'content-type': 'application/json' }).end(status === 200 ? '{"ok":true}' : '{}')
  })
  await origin.listen()
  t.teardown(() => origin.close())
  const source = new HttpJobSource({ origin: origin.url, token: 't', workerId: 'w1', completeRetryDelaysMs: [1, 1, 1] })
  t.teardown(() => source.close())
  await source.complete('j1', RESULT)
  t.equal(origin.count('/v1/jobs/j1/complete'), 3)
})

t.test('a completion the origin refuses (409) is not sent again', async (t) => {
  const origin = new ScriptedOrigin()
  origin.routes.set('/v1/jobs/j2/complete', (_req, res) => {
    res.writeHead(409, { 'content-type': 'application/json' }).end('{"error":{"code":"ERR_JOB_LEASE_LOST"}}')
  })
  await origin.listen()
  t.teardown(() => origin.close())
  const source = new HttpJobSource({ origin: origin.url, token: 't', workerId: 'w1', completeRetryDelaysMs: [1, 1, 1] })
  t.teardown(() => source.close())
  await t.rejects(source.complete('j2', RESULT), { code: 'ERR_UPSTREAM_STATUS', message: /ERR_JOB_LEASE_LOST/ })
  t.equal(origin.count('/v1/jobs/j2/complete'), 1)
})

t.test('a completion is retried while the origin is unreachable, then fails with the transport error', async (t) => {
  const origin = new ScriptedOrigin()
  await origin.listen()
  const url = origin.url
  await origin.close()
  const source = new HttpJobSource({ origin: url, token: 't', workerId: 'w1', completeRetryDelaysMs: [1, 1] })
  t.teardown(() => source.close())
  await t.rejects(source.complete('j3', RESULT), { code: /^ERR_UPSTREAM_/ })
})
