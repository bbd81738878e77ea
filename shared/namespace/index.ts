// The content namespace (docs/architecture.md §2): paths, extensions, media types, content
// classes and key rules, in one place for every tier and the store.
export {
  CONTENT_ROOT,
  DASH_MANIFEST,
  INIT_SEGMENT,
  MASTER_PLAYLIST,
  MEDIA_PLAYLIST,
  THUMBS_DIR,
  contentPath,
  isVideoDir,
  isVideoId,
  parseContentPath,
  pathOfStoreKey,
  sourceStoreKey,
  sourceStorePrefix,
  storeKeyOf,
  videoDir,
  videoStorePrefix,
} from './paths.js'
export { DEFAULT_CONTENT_TYPE, contentClassOf, contentTypeFor, type ContentClass } from './extensions.js'
export {
  MAX_KEY_BYTES,
  MAX_QUERY_BYTES,
  MAX_SEGMENT_BYTES,
  MAX_STORE_KEY_BYTES,
  isStoreKeySegment,
  isValidPath,
  pathProblem,
  validatePath,
  validateQuery,
  validateStoreKey,
  validateStorePrefix,
} from './keys.js'
