// The S3 server the S3 store is tested against (SeaweedFS, started by shared/testing) checks SigV4:
// without that, the store's credential errors could not be tested and a test could pass against a
// server that accepts anything.
import t from 'tap'
import { CreateBucketCommand, ListBucketsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { startS3Server, type S3Server } from '../../testing/index.js'

let server: S3Server
t.before(async () => {
  server = await startS3Server()
})
t.teardown(async () => {
  await server?.stop()
})

function client(accessKeyId: string, secretAccessKey: string): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    maxAttempts: 1,
  })
}

t.test('the S3 server accepts a request signed with its credentials', async (t) => {
  const s3 = client(server.accessKeyId, server.secretAccessKey)
  t.teardown(() => s3.destroy())
  await s3.send(new CreateBucketCommand({ Bucket: 'signed' }))
  await s3.send(new PutObjectCommand({ Bucket: 'signed', Key: 'a.txt', Body: 'x' }))
  const listed = await s3.send(new ListBucketsCommand({}))
  t.ok(listed.Buckets?.some((b) => b.Name === 'signed'))
})

t.test('the S3 server refuses a request signed with wrong credentials', async (t) => {
  const wrongSecret = client(server.accessKeyId, 'not-the-secret-key-000000000000')
  const unknownKey = client('NOSUCHACCESSKEY', server.secretAccessKey)
  t.teardown(() => {
    wrongSecret.destroy()
    unknownKey.destroy()
  })
  await t.rejects(wrongSecret.send(new ListBucketsCommand({})), {
    name: 'SignatureDoesNotMatch',
    $metadata: { httpStatusCode: 403 },
  })
  await t.rejects(wrongSecret.send(new PutObjectCommand({ Bucket: 'signed', Key: 'b.txt', Body: 'x' })), {
    name: 'SignatureDoesNotMatch',
    $metadata: { httpStatusCode: 403 },
  })
  await t.rejects(unknownKey.send(new ListBucketsCommand({})), {
    name: 'InvalidAccessKeyId',
    $metadata: { httpStatusCode: 403 },
  })
})
