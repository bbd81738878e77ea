export type { ByteRange, ListOptions, ObjectInfo, PutOptions, Store } from './types.js'
export { FsStore, type FsStoreOptions } from './fs-store.js'
export { contentTypeFor, DEFAULT_CONTENT_TYPE } from './content-type.js'
export { validateStoreKey, validateStorePrefix, MAX_KEY_LENGTH, MAX_SEGMENT_LENGTH } from './keys.js'
