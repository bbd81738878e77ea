// The object store abstraction shared by the origin (content server, uploads) and the transcoder
// (renditions). FsStore implements it on a local directory; the S3 store will implement the same
// interface and must pass the same contract suite (./test/contract.ts).

export interface ObjectInfo {
  /** Store key: the content path without its leading '/' (docs/architecture.md §2). */
  key: string
  size: number
  /** Strong entity tag, quoted (RFC 9110 §8.8.3), e.g. "\"3f2a…\"". Changes when content is replaced. */
  etag: string
  lastModifiedMs: number
  contentType: string
}

/** Inclusive byte range, like RFC 9110 §14.1.2 `first-pos`/`last-pos`. */
export interface ByteRange {
  start: number
  end: number
}

export interface PutOptions {
  contentType?: string
}

export interface ListOptions {
  /** Maximum number of objects returned (default 1000). */
  limit?: number
  /** Exclusive start key: only keys sorting strictly after it are returned (pagination cursor). */
  after?: string
}

export interface Store {
  head(key: string): Promise<ObjectInfo | null>
  /**
   * `range.end` past the end is clamped to size - 1; a range starting at or past the end (or
   * start > end) is unsatisfiable and throws ERR_REQUEST_RANGE (RFC 9110 §15.5.17).
   */
  get(key: string, range?: ByteRange): Promise<{ info: ObjectInfo; body: NodeJS.ReadableStream } | null>
  /** Streamed and atomic: readers see the old object or the complete new one, never a part. */
  put(key: string, body: AsyncIterable<Uint8Array> | Uint8Array, opts?: PutOptions): Promise<ObjectInfo>
  delete(key: string): Promise<boolean>
  /** Deletes every object whose key starts with `prefix` (a plain string prefix, not only '/' boundaries). */
  deletePrefix(prefix: string): Promise<number>
  /** Objects whose key starts with `prefix`, sorted by key (byte order, like S3 ListObjectsV2). */
  list(prefix: string, opts?: ListOptions): Promise<ObjectInfo[]>
}

/** A request a client sends to the store itself (a presigned URL, SigV4 query auth). */
export interface PresignedRequest {
  method: 'GET' | 'PUT'
  url: string
  /** Headers the client must send as given (they are signed). */
  headers: Record<string, string>
  expiresAtMs: number
}

/** A part a multipart upload has received (ListParts). */
export interface UploadedPart {
  n: number
  etag: string
  size: number
}

/**
 * A store that clients can reach directly (S3): presigned single-object GET/PUT, and multipart
 * uploads whose parts clients send straight to the store (docs/architecture.md §7.2, §9).
 */
export interface DirectStore extends Store {
  presignGet(key: string, opts: { expiresInS: number }): Promise<PresignedRequest>
  presignPut(key: string, opts: { expiresInS: number; contentType?: string }): Promise<PresignedRequest>
  createMultipart(key: string, opts?: PutOptions): Promise<string>
  presignPart(key: string, uploadId: string, n: number, opts: { expiresInS: number }): Promise<PresignedRequest>
  /** Parts received so far, by number; ERR_STORE_MULTIPART when the upload is gone. */
  listParts(key: string, uploadId: string): Promise<UploadedPart[]>
  completeMultipart(key: string, uploadId: string, parts: readonly { n: number; etag: string }[]): Promise<ObjectInfo>
  /** Best effort: an upload already gone is not an error. */
  abortMultipart(key: string, uploadId: string): Promise<void>
}

export function isDirectStore(store: Store): store is DirectStore {
  return typeof (store as Partial<DirectStore>).presignGet === 'function'
}
