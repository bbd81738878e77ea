export type {
  ByteRange,
  DirectStore,
  ListOptions,
  ObjectInfo,
  PresignedRequest,
  PutOptions,
  Store,
  UploadedPart,
} from './types.js'
export { isDirectStore } from './types.js'
export { FsStore, type FsStoreOptions } from './fs-store.js'
export { contentTypeFor, DEFAULT_CONTENT_TYPE } from './content-type.js'
export { validateStoreKey, validateStorePrefix, MAX_KEY_LENGTH, MAX_SEGMENT_LENGTH } from './keys.js'
export { S3Store, type S3StoreOptions } from './s3-store.js'
