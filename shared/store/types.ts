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
