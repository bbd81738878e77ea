// The Store on any S3-compatible server (AWS S3, SeaweedFS, Garage, Ceph RGW, MinIO). The one home of
// @aws-sdk/client-s3 (docs/style.md "Layout"). Behaviour matches FsStore through the contract suite
// (./test/contract.ts); the README says where S3 forced a choice.
import { createHash, createHmac, randomBytes, type Hash, type Hmac } from 'node:crypto'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import { SignatureV4 } from '@smithy/signature-v4'
import { VcdnError, isVcdnError } from '../errors/index.js'
import { contentTypeFor } from './content-type.js'
import { validateStoreKey, validateStorePrefix } from './keys.js'
import type {
  ByteRange,
  DirectStore,
  ListOptions,
  ObjectInfo,
  PresignedRequest,
  PutOptions,
  UploadedPart,
} from './types.js'

export interface S3StoreOptions {
  bucket: string
  region: string
  /** Any S3-compatible endpoint, e.g. `http://127.0.0.1:8333`; omit for AWS. */
  endpoint?: string
  accessKeyId: string
  secretAccessKey: string
  /** `http://host/bucket/key` instead of `http://bucket.host/key` (most self-hosted servers). */
  forcePathStyle?: boolean
  /** Bodies longer than this go up as a multipart upload (default 16 MiB, at least partSizeBytes). */
  multipartThresholdBytes?: number
  /** Multipart part size (default 8 MiB; S3 needs at least 5 MiB for every part but the last). */
  partSizeBytes?: number
  /** Connect timeout per attempt (default 5 s). */
  connectTimeoutMs?: number
  /**
   * Per attempt: longest wait for the response headers and longest socket inactivity after, so a
   * server that stops answering fails with ERR_STORE_UNAVAILABLE instead of hanging (default 30 s).
   */
  requestTimeoutMs?: number
  /** Attempts per request, including the first (default 3; the SDK's standard retry with backoff). */
  maxAttempts?: number
}

const MIB = 1024 * 1024
const MIN_PART_BYTES = 5 * MIB
const MAX_PARTS = 10_000
const DEFAULT_LIST_LIMIT = 1000
const MAX_LIST_LIMIT = 10_000
const HEAD_CONCURRENCY = 16
// User metadata (x-amz-meta-*): S3's own ETag is the MD5 of the bytes, equal for equal rewrites, but
// the Store's ETag must change with every put (contract: "a rewrite with equal bytes is still a new
// version"), and Last-Modified has one-second precision while put must return what head will say.
const META_PUT_ID = 'vcdn-put-id'
const META_MTIME = 'vcdn-mtime-ms'
/** SigV4 presigned URLs live at most a week. */
const MAX_PRESIGN_S = 7 * 24 * 3600

/**
 * - get is one GetObject: info and bytes come from the same response, so they are one version.
 * - put buffers up to the multipart threshold and sends one PutObject; longer bodies become a
 *   multipart upload, one part in memory at a time, aborted when anything fails. Either way the
 *   object appears whole on completion (S3 puts are atomic) or not at all.
 * - Every S3 failure becomes a coded error (`#fail`): credentials → ERR_STORE_AUTH, missing bucket
 *   → ERR_STORE_BUCKET, unreachable/timeout → ERR_STORE_UNAVAILABLE, anything else → ERR_STORE_IO.
 */
export class S3Store implements DirectStore {
  readonly #client: S3Client
  readonly #signer: SignatureV4
  /** Where presigned URLs point: the endpoint's origin and the path before the key. */
  readonly #url: { protocol: string; hostname: string; port: number | undefined; pathPrefix: string }
  readonly #bucket: string
  readonly #thresholdBytes: number
  readonly #partBytes: number

  constructor(opts: S3StoreOptions) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('S3Store: options must be an object')
    for (const field of ['bucket', 'region', 'accessKeyId', 'secretAccessKey'] as const) {
      if (typeof opts[field] !== 'string' || opts[field].length === 0) {
        throw new TypeError(`S3Store: options.${field} must be a non-empty string`)
      }
    }
    if (opts.endpoint !== undefined && !/^https?:\/\/[^/]+/.test(opts.endpoint)) {
      throw new TypeError('S3Store: options.endpoint must be an http(s) URL')
    }
    if (opts.forcePathStyle !== undefined && typeof opts.forcePathStyle !== 'boolean') {
      throw new TypeError('S3Store: options.forcePathStyle must be a boolean')
    }
    const partBytes = intOption(opts.partSizeBytes, 8 * MIB, MIN_PART_BYTES, 5 * 1024 * MIB, 'partSizeBytes')
    this.#partBytes = partBytes
    this.#thresholdBytes = intOption(
      opts.multipartThresholdBytes,
      Math.max(16 * MIB, partBytes),
      partBytes,
      5 * 1024 * MIB,
      'multipartThresholdBytes',
    )
    const connectTimeoutMs = intOption(opts.connectTimeoutMs, 5000, 1, 600_000, 'connectTimeoutMs')
    const requestTimeoutMs = intOption(opts.requestTimeoutMs, 30_000, 1, 3_600_000, 'requestTimeoutMs')
    const maxAttempts = intOption(opts.maxAttempts, 3, 1, 10, 'maxAttempts')
    this.#bucket = opts.bucket
    this.#url = presignTarget(opts)
    // SigV4 query authentication (AWS S3 API "Authenticating Requests: Using Query Parameters"),
    // as @aws-sdk/s3-request-presigner does it: S3 paths are not escaped twice, and the payload is
    // UNSIGNED-PAYLOAD (the client's bytes are not known when the URL is made).
    this.#signer = new SignatureV4({
      service: 's3',
      region: opts.region,
      credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey },
      sha256: NodeSha256,
      uriEscapePath: false,
      applyChecksum: false,
    })
    this.#client = new S3Client({
      region: opts.region,
      ...(opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle ?? false,
      credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey },
      maxAttempts,
      // requestTimeout runs until the response headers; throwOnRequestTimeout makes it fail the
      // request (without it the SDK only warns and waits forever on a server that accepted the
      // connection but never answers). socketTimeout covers a body that stalls later.
      requestHandler: {
        connectionTimeout: connectTimeoutMs,
        requestTimeout: requestTimeoutMs,
        throwOnRequestTimeout: true,
        socketTimeout: requestTimeoutMs,
      },
      // Only the checksums an operation requires: several S3-compatible servers reject the
      // flexible-checksum headers (CRC32 trailers) that newer SDKs send by default.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    })
  }

  /**
   * Start-up check: HEADs the bucket, so wrong credentials, a missing bucket or an unreachable
   * server fail the start with a coded error instead of failing every request later.
   */
  async check(): Promise<void> {
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.#bucket }))
    } catch (err) {
      throw this.#fail('check', '', err)
    }
  }

  /** Creates the bucket when it does not exist yet (set-up scripts and tests). */
  async ensureBucket(): Promise<void> {
    try {
      await this.#client.send(new CreateBucketCommand({ Bucket: this.#bucket }))
    } catch (err) {
      const name = err instanceof S3ServiceException ? err.name : ''
      if (name === 'BucketAlreadyOwnedByYou' || name === 'BucketAlreadyExists') return
      throw this.#fail('ensureBucket', '', err)
    }
  }

  close(): void {
    this.#client.destroy()
  }

  async head(key: string): Promise<ObjectInfo | null> {
    validateStoreKey(key)
    try {
      const res = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: key }))
      return toInfo(key, res)
    } catch (err) {
      // A HEAD answer has no body, so a missing bucket also reads as 404 here; check() at start-up
      // and every other call tell it apart.
      if (statusOf(err) === 404) return null
      throw this.#fail('head', key, err)
    }
  }

  async get(key: string, range?: ByteRange): Promise<{ info: ObjectInfo; body: NodeJS.ReadableStream } | null> {
    validateStoreKey(key)
    if (range !== undefined) {
      // RFC 9110 §14.1.2: a malformed or backwards range is unsatisfiable before asking anyone;
      // one starting past the end is answered 416 by the server (mapped below).
      if (
        !Number.isSafeInteger(range.start) ||
        !Number.isSafeInteger(range.end) ||
        range.start < 0 ||
        range.end < range.start
      ) {
        throw new VcdnError('ERR_REQUEST_RANGE', `bytes ${range.start}-${range.end}`)
      }
    }
    let res
    try {
      res = await this.#client.send(
        new GetObjectCommand({
          Bucket: this.#bucket,
          Key: key,
          ...(range !== undefined ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
      )
    } catch (err) {
      const status = statusOf(err)
      if (status === 404 && !isNoSuchBucket(err)) return null
      // RFC 9110 §15.5.17: first-pos at or past the end (an empty object has no satisfiable range).
      if (status === 416)
        throw new VcdnError('ERR_REQUEST_RANGE', `bytes ${range?.start}-${range?.end}`, { cause: err })
      throw this.#fail('get', key, err)
    }
    const body = res.Body as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined
    if (body === undefined) throw new VcdnError('ERR_STORE_IO', `get ${key}: response without a body`)
    // Content-Range "bytes 2-5/10" carries the whole object's size (RFC 9110 §14.4); without a
    // range, Content-Length is that size.
    const total = /\/(\d+)$/.exec(res.ContentRange ?? '')?.[1]
    const size = total !== undefined ? Number(total) : (res.ContentLength ?? 0)
    if (range !== undefined && total === undefined && size > 0 && range.start >= size) {
      body.destroy?.()
      throw new VcdnError('ERR_REQUEST_RANGE', `bytes ${range.start}-${range.end} of ${size}`)
    }
    return { info: toInfo(key, { ...res, ContentLength: size }), body }
  }

  async put(key: string, body: AsyncIterable<Uint8Array> | Uint8Array, opts?: PutOptions): Promise<ObjectInfo> {
    validateStoreKey(key)
    const contentType = opts?.contentType ?? contentTypeFor(key)
    if (typeof contentType !== 'string' || contentType.length === 0 || contentType.length > 256) {
      throw new TypeError('S3Store.put: opts.contentType must be a non-empty string of at most 256 chars')
    }
    const putId = randomBytes(12).toString('hex')
    const mtimeMs = Date.now()
    const metadata = { [META_PUT_ID]: putId, [META_MTIME]: String(mtimeMs) }
    const common = { Bucket: this.#bucket, Key: key, ContentType: contentType, Metadata: metadata }
    const chunks = body instanceof Uint8Array ? single(body) : body
    const it = chunks[Symbol.asyncIterator]()
    // Fill the first buffer: a body that ends within the threshold is one PutObject.
    let first: { bytes: Buffer; done: boolean }
    try {
      first = await fill(it, this.#thresholdBytes + 1)
    } catch (err) {
      if (err instanceof BodyError) throw err.inner
      throw err
    }
    let size: number
    let s3Etag: string | undefined
    if (first.done && first.bytes.length <= this.#thresholdBytes) {
      try {
        const res = await this.#client.send(new PutObjectCommand({ ...common, Body: first.bytes }))
        s3Etag = res.ETag
      } catch (err) {
        throw this.#fail('put', key, err)
      }
      size = first.bytes.length
    } else {
      ;({ size, s3Etag } = await this.#multipart(key, common, first.bytes, first.done, it))
    }
    return {
      key,
      size,
      etag: storeEtag(s3Etag, putId),
      lastModifiedMs: mtimeMs,
      contentType,
    }
  }

  /**
   * CreateMultipartUpload, then one UploadPart per `partBytes` as the body streams (one part in
   * memory at a time), then Complete. Any failure, the producer's included, aborts the upload so no
   * parts linger; the producer's own error is rethrown as is.
   */
  async #multipart(
    key: string,
    common: { Bucket: string; Key: string; ContentType: string; Metadata: Record<string, string> },
    head: Buffer,
    isDone: boolean,
    it: AsyncIterator<Uint8Array>,
  ): Promise<{ size: number; s3Etag: string | undefined }> {
    let uploadId: string | undefined
    try {
      const created = await this.#client.send(new CreateMultipartUploadCommand(common))
      uploadId = created.UploadId
      if (uploadId === undefined) throw new Error('CreateMultipartUpload answered without an UploadId')
    } catch (err) {
      throw this.#fail('put', key, err)
    }
    const parts: { PartNumber: number; ETag: string }[] = []
    let size = 0
    let pending = head
    let isEnd = isDone
    try {
      for (;;) {
        while (pending.length >= this.#partBytes || (isEnd && pending.length > 0)) {
          const part = pending.subarray(0, this.#partBytes)
          pending = pending.subarray(part.length)
          const partNumber = parts.length + 1
          if (partNumber > MAX_PARTS) throw new VcdnError('ERR_STORE_IO', `put ${key}: more than ${MAX_PARTS} parts`)
          const res = await this.#client.send(
            new UploadPartCommand({
              Bucket: common.Bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: partNumber,
              Body: part,
            }),
          )
          if (res.ETag === undefined) throw new Error(`UploadPart ${partNumber} answered without an ETag`)
          parts.push({ PartNumber: partNumber, ETag: res.ETag })
          size += part.length
        }
        if (isEnd) break
        const next = await fill(it, this.#partBytes - pending.length)
        pending = pending.length === 0 ? next.bytes : Buffer.concat([pending, next.bytes])
        isEnd = next.done
      }
      const done = await this.#client.send(
        new CompleteMultipartUploadCommand({
          Bucket: common.Bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
      )
      return { size, s3Etag: done.ETag }
    } catch (err) {
      await this.#client
        .send(new AbortMultipartUploadCommand({ Bucket: common.Bucket, Key: key, UploadId: uploadId }))
        .catch(() => undefined) // best effort: a bucket lifecycle rule reaps what an abort misses
      if (err instanceof BodyError) throw err.inner
      if (isVcdnError(err)) throw err
      throw this.#fail('put', key, err)
    }
  }

  presignGet(key: string, opts: { expiresInS: number }): Promise<PresignedRequest> {
    validateStoreKey(key)
    return this.#presign('GET', key, {}, {}, opts.expiresInS)
  }

  /**
   * A single-object PUT (up to S3's 5 GB) carrying the same user metadata as put(), so head()
   * answers the Store's ETag and mtime for it; content type and metadata are signed headers the
   * client must send as given.
   */
  presignPut(key: string, opts: { expiresInS: number; contentType?: string }): Promise<PresignedRequest> {
    validateStoreKey(key)
    const headers = { 'content-type': checkedContentType(key, opts.contentType), ...putMetadataHeaders() }
    return this.#presign('PUT', key, {}, headers, opts.expiresInS)
  }

  async createMultipart(key: string, opts?: PutOptions): Promise<string> {
    validateStoreKey(key)
    const metadata = { [META_PUT_ID]: randomBytes(12).toString('hex'), [META_MTIME]: String(Date.now()) }
    try {
      const created = await this.#client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.#bucket,
          Key: key,
          ContentType: checkedContentType(key, opts?.contentType),
          Metadata: metadata,
        }),
      )
      if (created.UploadId === undefined) throw new Error('CreateMultipartUpload answered without an UploadId')
      return created.UploadId
    } catch (err) {
      throw this.#fail('createMultipart', key, err)
    }
  }

  presignPart(key: string, uploadId: string, n: number, opts: { expiresInS: number }): Promise<PresignedRequest> {
    validateStoreKey(key)
    if (!Number.isInteger(n) || n < 1 || n > MAX_PARTS)
      throw new TypeError(`S3Store.presignPart: n must be in 1..${MAX_PARTS}`)
    return this.#presign('PUT', key, { partNumber: String(n), uploadId }, {}, opts.expiresInS)
  }

  async listParts(key: string, uploadId: string): Promise<UploadedPart[]> {
    validateStoreKey(key)
    const out: UploadedPart[] = []
    let marker: string | undefined
    // Bounded: at most MAX_PARTS parts, 1000 a page.
    for (let page = 0; page <= MAX_PARTS / 1000; page++) {
      let res
      try {
        res = await this.#client.send(
          new ListPartsCommand({
            Bucket: this.#bucket,
            Key: key,
            UploadId: uploadId,
            ...(marker !== undefined ? { PartNumberMarker: marker } : {}),
          }),
        )
      } catch (err) {
        throw this.#multipartFail('listParts', key, err)
      }
      for (const p of res.Parts ?? []) {
        if (p.PartNumber !== undefined && p.ETag !== undefined) {
          out.push({ n: p.PartNumber, etag: p.ETag, size: p.Size ?? 0 })
        }
      }
      marker = res.NextPartNumberMarker
      if (res.IsTruncated !== true || marker === undefined) break
    }
    return out.sort((a, b) => a.n - b.n)
  }

  async completeMultipart(
    key: string,
    uploadId: string,
    parts: readonly { n: number; etag: string }[],
  ): Promise<ObjectInfo> {
    validateStoreKey(key)
    try {
      await this.#client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.#bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.n, ETag: p.etag })) },
        }),
      )
    } catch (err) {
      throw this.#multipartFail('completeMultipart', key, err)
    }
    const info = await this.head(key)
    if (info === null) throw new VcdnError('ERR_STORE_IO', `completeMultipart ${key}: object missing after completion`)
    return info
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    validateStoreKey(key)
    try {
      await this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: key, UploadId: uploadId }))
    } catch (err) {
      if (statusOf(err) === 404) return
      throw this.#fail('abortMultipart', key, err)
    }
  }

  async #presign(
    method: 'GET' | 'PUT',
    key: string,
    query: Record<string, string>,
    signedHeaders: Record<string, string>,
    expiresInS: number,
  ): Promise<PresignedRequest> {
    if (!Number.isInteger(expiresInS) || expiresInS < 1 || expiresInS > MAX_PRESIGN_S) {
      throw new TypeError(`S3Store: expiresInS must be an integer in 1..${MAX_PRESIGN_S}`)
    }
    const { protocol, hostname, port, pathPrefix } = this.#url
    const host = port === undefined ? hostname : `${hostname}:${port}`
    const signingDate = new Date()
    const signed = await this.#signer.presign(
      {
        method,
        protocol,
        hostname,
        ...(port !== undefined ? { port } : {}),
        path: `${pathPrefix}/${key}`,
        query: { ...query },
        headers: { host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...signedHeaders },
      },
      // The signed headers stay headers (not hoisted into the query): servers differ in whether
      // they read x-amz-meta-* from a query string, all read them from headers.
      { expiresIn: expiresInS, signingDate, unhoistableHeaders: new Set(Object.keys(signedHeaders)) },
    )
    const search = Object.entries(signed.query ?? {})
      .map(([k, v]) => `${rfc3986(k)}=${rfc3986(Array.isArray(v) ? (v[0] ?? '') : (v ?? ''))}`)
      .join('&')
    return {
      method,
      url: `${protocol}//${host}${signed.path}?${search}`,
      headers: signedHeaders,
      expiresAtMs: signingDate.getTime() + expiresInS * 1000,
    }
  }

  /** NoSuchUpload / InvalidPart / a part too small: the client's multipart state is wrong. */
  #multipartFail(op: string, key: string, err: unknown): VcdnError {
    const name = err instanceof Error ? err.name : ''
    const status = statusOf(err)
    if (
      ['NoSuchUpload', 'InvalidPart', 'InvalidPartOrder', 'EntityTooSmall'].includes(name) ||
      (status === 404 && !isNoSuchBucket(err))
    ) {
      return new VcdnError('ERR_STORE_MULTIPART', `${op} ${key}: ${name}`, { cause: err })
    }
    return this.#fail(op, key, err)
  }

  async delete(key: string): Promise<boolean> {
    validateStoreKey(key)
    // S3's DELETE answers 204 whether or not the key existed; the HEAD answers the Store's question
    // (a concurrent put between the two may make the answer stale, which callers tolerate).
    const existed = (await this.head(key)) !== null
    if (!existed) return false
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: key }))
    } catch (err) {
      throw this.#fail('delete', key, err)
    }
    return true
  }

  async deletePrefix(prefix: string): Promise<number> {
    validateStorePrefix(prefix)
    // An empty prefix would wipe the bucket; nothing in vcdn needs that, so it is refused.
    if (prefix === '') throw new VcdnError('ERR_STORE_KEY', 'deletePrefix needs a non-empty prefix')
    let count = 0
    for (;;) {
      // Always the first page: the previous page's keys are gone once deleted.
      const keys = await this.#listKeys(prefix, undefined, DEFAULT_LIST_LIMIT)
      if (keys.length === 0) return count
      let res
      try {
        res = await this.#client.send(
          new DeleteObjectsCommand({
            Bucket: this.#bucket,
            Delete: { Objects: keys.map((k) => ({ Key: k.key })), Quiet: false },
          }),
        )
      } catch (err) {
        throw this.#fail('deletePrefix', prefix, err)
      }
      const failed = res.Errors ?? []
      if (failed.length > 0) {
        throw new VcdnError('ERR_STORE_IO', `deletePrefix ${prefix}: ${failed[0]?.Code} for ${failed[0]?.Key}`)
      }
      const deleted = res.Deleted?.length ?? 0
      // Guards the loop: a server that reports nothing deleted would otherwise list the same page forever.
      if (deleted === 0) throw new VcdnError('ERR_STORE_IO', `deletePrefix ${prefix}: nothing deleted`)
      count += deleted
    }
  }

  async list(prefix: string, opts?: ListOptions): Promise<ObjectInfo[]> {
    validateStorePrefix(prefix)
    const limit = opts?.limit ?? DEFAULT_LIST_LIMIT
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new TypeError(`S3Store.list: opts.limit must be an integer in 1..${MAX_LIST_LIMIT}`)
    }
    const after = opts?.after
    if (after !== undefined && typeof after !== 'string')
      throw new TypeError('S3Store.list: opts.after must be a string')
    const keys = await this.#listKeys(prefix, after, limit)
    // ListObjectsV2 carries neither the content type nor user metadata (the Store ETag, the put
    // time), so each listed object is HEADed; list is an operator path, not a request path.
    const out: (ObjectInfo | null)[] = new Array<ObjectInfo | null>(keys.length).fill(null)
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < keys.length) {
        const i = next++
        out[i] = await this.head(keys[i]!.key) // null: deleted while listing
      }
    }
    await Promise.all(Array.from({ length: Math.min(HEAD_CONCURRENCY, keys.length) }, worker))
    return out.filter((info): info is ObjectInfo => info !== null)
  }

  /** Keys in byte order (ListObjectsV2 order), up to `limit`, following continuation tokens. */
  async #listKeys(prefix: string, after: string | undefined, limit: number): Promise<{ key: string }[]> {
    const out: { key: string }[] = []
    let token: string | undefined
    for (;;) {
      let res
      try {
        res = await this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: prefix,
            MaxKeys: Math.min(1000, limit - out.length),
            ...(token !== undefined ? { ContinuationToken: token } : after !== undefined ? { StartAfter: after } : {}),
          }),
        )
      } catch (err) {
        throw this.#fail('list', prefix, err)
      }
      for (const obj of res.Contents ?? []) {
        if (obj.Key === undefined || out.length >= limit) continue
        // Objects written by other tools may not be valid keys; the Store never returns those.
        if (isValidKey(obj.Key)) out.push({ key: obj.Key })
      }
      token = res.NextContinuationToken
      if (res.IsTruncated !== true || token === undefined || out.length >= limit) return out
    }
  }

  #fail(op: string, key: string, err: unknown): VcdnError {
    return s3Error(`${op} ${this.#bucket}/${key}`, err)
  }
}

/** Maps an SDK failure to a coded error, keeping it as `cause`. */
function s3Error(what: string, err: unknown): VcdnError {
  if (isVcdnError(err)) return err
  const status = statusOf(err)
  const name = err instanceof Error ? err.name : ''
  const code = err !== null && typeof err === 'object' && 'code' in err ? String(err.code) : ''
  if (
    status === 403 ||
    status === 401 ||
    ['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'Forbidden'].includes(name)
  ) {
    return new VcdnError('ERR_STORE_AUTH', `${what}: ${name}`, { cause: err })
  }
  if (isNoSuchBucket(err) || (status === 404 && what.startsWith('check '))) {
    return new VcdnError('ERR_STORE_BUCKET', what, { cause: err })
  }
  if (
    status === 503 ||
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE'].includes(code) ||
    ['TimeoutError', 'RequestTimeout'].includes(name)
  ) {
    return new VcdnError('ERR_STORE_UNAVAILABLE', `${what}: ${code || name}`, { cause: err })
  }
  return new VcdnError('ERR_STORE_IO', `${what}: ${name || code}`, { cause: err })
}

function isNoSuchBucket(err: unknown): boolean {
  return err instanceof Error && err.name === 'NoSuchBucket'
}

function statusOf(err: unknown): number | undefined {
  if (err !== null && typeof err === 'object' && '$metadata' in err) {
    const meta = (err as { $metadata?: { httpStatusCode?: number } }).$metadata
    return meta?.httpStatusCode
  }
  return undefined
}

function toInfo(
  key: string,
  res: {
    ContentLength?: number | undefined
    ETag?: string | undefined
    LastModified?: Date | undefined
    ContentType?: string | undefined
    Metadata?: Record<string, string> | undefined
  },
): ObjectInfo {
  const mtime = Number(res.Metadata?.[META_MTIME])
  return {
    key,
    size: res.ContentLength ?? 0,
    etag: storeEtag(res.ETag, res.Metadata?.[META_PUT_ID] ?? ''),
    lastModifiedMs: Number.isSafeInteger(mtime) && mtime > 0 ? mtime : (res.LastModified?.getTime() ?? 0),
    contentType: res.ContentType !== undefined && res.ContentType !== '' ? res.ContentType : contentTypeFor(key),
  }
}

/** Strong, quoted (RFC 9110 §8.8.3): 128 bits of sha1(S3 ETag, put id). */
function storeEtag(s3Etag: string | undefined, putId: string): string {
  return `"${createHash('sha1')
    .update(`${s3Etag ?? ''}:${putId}`)
    .digest('hex')
    .slice(0, 32)}"`
}

function isValidKey(key: string): boolean {
  try {
    validateStoreKey(key)
    return true
  } catch {
    return false
  }
}

function intOption(value: number | undefined, fallback: number, min: number, max: number, name: string): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`S3Store: options.${name} must be an integer in ${min}..${max}`)
  }
  return value
}

/** Wraps the producer's failure so it can be told apart from S3's. */
class BodyError extends Error {
  constructor(readonly inner: unknown) {
    super('the body producer failed')
  }
}

async function* single(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes
}

/** Reads from `it` until at least `wantBytes` are buffered or the body ends. */
async function fill(it: AsyncIterator<Uint8Array>, wantBytes: number): Promise<{ bytes: Buffer; done: boolean }> {
  const chunks: Buffer[] = []
  let length = 0
  while (length < wantBytes) {
    let next: IteratorResult<Uint8Array>
    try {
      next = await it.next()
    } catch (err) {
      throw new BodyError(err)
    }
    if (next.done === true) return { bytes: Buffer.concat(chunks, length), done: true }
    const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength)
    chunks.push(chunk)
    length += chunk.length
  }
  return { bytes: Buffer.concat(chunks, length), done: false }
}

/** The signed headers of a presigned PUT that head() reads back as the Store's ETag and mtime. */
function putMetadataHeaders(): Record<string, string> {
  return {
    [`x-amz-meta-${META_PUT_ID}`]: randomBytes(12).toString('hex'),
    [`x-amz-meta-${META_MTIME}`]: String(Date.now()),
  }
}

function checkedContentType(key: string, contentType: string | undefined): string {
  const type = contentType ?? contentTypeFor(key)
  if (typeof type !== 'string' || type.length === 0 || type.length > 256 || !/^[\x21-\x7e][\x20-\x7e]*$/.test(type)) {
    throw new TypeError('S3Store: contentType must be a printable string of at most 256 chars')
  }
  return type
}

/** Path style `http://host/bucket/key`, or virtual-host style `http://bucket.host/key` (AWS default). */
function presignTarget(opts: S3StoreOptions): {
  protocol: string
  hostname: string
  port: number | undefined
  pathPrefix: string
} {
  const base = new URL(opts.endpoint ?? `https://s3.${opts.region}.amazonaws.com`)
  const port = base.port === '' ? undefined : Number(base.port)
  const basePath = base.pathname.replace(/\/+$/, '')
  return opts.forcePathStyle === true
    ? { protocol: base.protocol, hostname: base.hostname, port, pathPrefix: `${basePath}/${opts.bucket}` }
    : { protocol: base.protocol, hostname: `${opts.bucket}.${base.hostname}`, port, pathPrefix: basePath }
}

/** RFC 3986 §2.3 unreserved characters stay, everything else is percent-encoded (as SigV4 does). */
function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

/** SHA-256 and HMAC-SHA-256 for the signer, from node:crypto. */
class NodeSha256 {
  readonly #h: Hash | Hmac
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#h = secret === undefined ? createHash('sha256') : createHmac('sha256', toBytes(secret))
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#h.update(toBytes(data))
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#h.digest()))
  }
  reset(): void {
    throw new Error('NodeSha256.reset is not used by the signer')
  }
}

function toBytes(data: string | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8')
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  return Buffer.from(data)
}
