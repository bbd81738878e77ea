import t from 'tap'
import { join } from 'node:path'
import { EXAMPLE_SECRETS_ENV, ROOT } from '../../shared/testing/index.js'
import { loadOriginConfig } from '../src/config.js'

t.test('the example origin config loads once its placeholder secrets are replaced', async (t) => {
  const file = join(ROOT, 'config', 'origin.example.json')
  t.throws(() => loadOriginConfig({ file, env: {} }), /tierSecret is an example placeholder/)
  const c = loadOriginConfig({ file, env: EXAMPLE_SECRETS_ENV })
  t.equal(c.listen.port, 8080)
  t.equal(c.activeKey, 'k1')
})

t.test('environment overrides the file', async (t) => {
  const c = loadOriginConfig({
    file: join(ROOT, 'config', 'origin.example.json'),
    env: { ...EXAMPLE_SECRETS_ENV, VCDN_LISTEN_PORT: '9999' },
  })
  t.equal(c.listen.port, 9999)
})

t.test('store.kind s3 needs a bucket and credentials and reports every missing one at once', async (t) => {
  const base = { tierSecret: 'origin-test-secret-0123456789abcdef', dataDir: '/tmp/x' }
  t.throws(
    () => loadOriginConfig({ overrides: { ...base, store: { kind: 's3' } }, env: {} }),
    /store\.s3\.bucket is required[\s\S]*store\.s3\.accessKeyId is required[\s\S]*store\.s3\.secretAccessKey is required/,
  )
  t.throws(
    () =>
      loadOriginConfig({ overrides: { ...base, store: { kind: 's3', s3: { secretAccessKey: 'short' } } }, env: {} }),
    /store\.s3\.secretAccessKey must be at least 32 bytes/,
  )
  const c = loadOriginConfig({
    overrides: { ...base, store: { kind: 's3', s3: { bucket: 'media', endpoint: 'http://127.0.0.1:8333' } } },
    env: {
      VCDN_STORE_S3_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      VCDN_STORE_S3_SECRET_ACCESS_KEY: 'an-s3-secret-from-the-environment-0123',
    },
  })
  t.equal(c.store.kind, 's3')
  t.equal(c.store.s3.accessKeyId, 'AKIAEXAMPLE', 'credentials can come from the environment')
  t.equal(c.store.s3.forcePathStyle, true)
  t.equal(c.store.s3.region, 'us-east-1')
})

t.test('bus.kind kafka needs its brokers; the embedded queue is the default', async (t) => {
  const base = { tierSecret: 'origin-test-secret-0123456789abcdef', dataDir: '/tmp/x' }
  t.equal(loadOriginConfig({ overrides: base, env: {} }).bus.kind, 'embedded')
  t.throws(
    () => loadOriginConfig({ overrides: { ...base, bus: { kind: 'kafka' } }, env: {} }),
    /bus\.kafka\.brokers is required when bus\.kind is kafka/,
  )
  t.throws(
    () =>
      loadOriginConfig({ overrides: { ...base, bus: { kind: 'kafka', kafka: { brokers: 'kafka one' } } }, env: {} }),
    /bus\.kafka\.brokers must be host:port/,
  )
  const c = loadOriginConfig({
    overrides: { ...base, bus: { kind: 'kafka' } },
    env: { VCDN_BUS_KAFKA_BROKERS: 'k1:9092,k2:9092' },
  })
  t.equal(c.bus.kafka.brokers, 'k1:9092,k2:9092', 'brokers can come from the environment')
  t.equal(c.bus.kafka.groupId, 'vcdn-transcoders')
})
