// The webhook signature (vcdn-signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>) and
// the config checks of `webhooks`.
import t from 'tap'
import { createHmac } from 'node:crypto'
import { loadOriginConfig } from '../src/config.js'
import { signWebhook, verifyWebhook } from '../src/webhooks.js'

const SECRET = 'webhook-test-secret-0123456789abcdef'
const BODY = '{"id":"e1","type":"video.ready","createdAtMs":1,"data":{"id":"v1"}}'
const NOW_MS = 1_800_000_000_500

t.test('the signature is the HMAC-SHA256 of "<unix seconds>.<raw body>" in hex', async (t) => {
  const header = signWebhook(SECRET, BODY, NOW_MS)
  const want = createHmac('sha256', SECRET).update(`1800000000.${BODY}`).digest('hex')
  t.equal(header, `t=1800000000,v1=${want}`)
})

t.test(
  'a receiver accepts a fresh signature and refuses a changed body, a wrong secret or a stale timestamp',
  async (t) => {
    const header = signWebhook(SECRET, BODY, NOW_MS)
    t.ok(verifyWebhook(SECRET, header, BODY, NOW_MS))
    t.ok(verifyWebhook(SECRET, header, BODY, NOW_MS + 299_000), 'within the tolerance')
    t.notOk(verifyWebhook(SECRET, header, BODY.replace('v1', 'v2'), NOW_MS), 'changed body')
    t.notOk(verifyWebhook('another-secret-0123456789abcdefghij', header, BODY, NOW_MS), 'wrong secret')
    t.notOk(verifyWebhook(SECRET, header, BODY, NOW_MS + 301_000), 'older than the tolerance')
    t.notOk(verifyWebhook(SECRET, header, BODY, NOW_MS - 301_000), 'from the future beyond the tolerance')
    t.notOk(verifyWebhook(SECRET, undefined, BODY, NOW_MS), 'no header')
    t.notOk(verifyWebhook(SECRET, 'garbage', BODY, NOW_MS), 'no fields')
    t.notOk(verifyWebhook(SECRET, header.replace(/v1=../, 'v1=00'), BODY, NOW_MS), 'altered signature')
  },
)

t.test('the config refuses a webhook that is not http(s), has a weak secret or an unknown key', async (t) => {
  const base = { tierSecret: 'origin-test-secret-0123456789abcdef', dataDir: '/tmp/x' }
  const load = (webhooks: unknown): unknown => loadOriginConfig({ overrides: { ...base, webhooks }, env: {} })
  const c = load([{ url: 'https://example.com/hook', secret: SECRET }]) as { webhooks: unknown }
  t.same(c.webhooks, [{ url: 'https://example.com/hook', secret: SECRET }])
  t.throws(
    () => load([{ url: 'ftp://example.com/hook', secret: SECRET }]),
    /webhooks\[0\]\.url must be an http\(s\) URL/,
  )
  t.throws(() => load([{ url: 'http://example.com/', secret: 'short' }]), /webhooks\[0\]\.secret must be at least/)
  t.throws(() => load([{ url: 'http://example.com/', secret: SECRET, x: 1 }]), /webhooks\[0\]\.x is not a known key/)
  t.throws(() => load('nope'), /webhooks must be an array of objects/)
})
