// Test helpers: see processes.ts (tiers as processes, scripted upstreams, raw HTTP, polling),
// kafka-broker.ts (a real single-node KRaft Kafka broker) and
// stack.ts (the whole tier with minted JWTs, test clips), cache-tests.ts (the public HTTP caching
// test suite against a cache).
export * from './processes.js'
export { RawConnection, slowGet, type RawResponse } from './raw-http.js'
export { startFullStack, makeClip, STACK_KEYS, STACK_SECRET, type FullStack, type VideoView } from './stack.js'
export * from './cache-tests.js'
export { EXAMPLE_SECRETS_ENV } from './secrets.js'
export { seededBytes } from './bytes.js'
export {
  kafkaBusConfig,
  startKafkaBroker,
  KAFKA_LIBS,
  type KafkaBroker,
  type KafkaBrokerOptions,
} from './kafka-broker.js'
export { proxyV1Header, proxyV2Header, PROXY_V2_SIGNATURE, type ProxyV2Options } from './proxy-protocol.js'
export { makeTestCa, spkiSha256, type CertPair, type TestCa } from './test-ca.js'
export { s3Bucket, startS3Server, WEED_BIN, type S3BucketConfig, type S3Server } from './s3-server.js'
export { CHROMIUM, launchChromium } from './browser.js'
