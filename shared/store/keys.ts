// Store keys follow the content namespace's rules (docs/architecture.md §2): a content path
// without its leading '/', in segments portable to every filesystem and S3.
export {
  MAX_STORE_KEY_BYTES as MAX_KEY_LENGTH,
  MAX_SEGMENT_BYTES as MAX_SEGMENT_LENGTH,
  isStoreKeySegment as isKeySegment,
  validateStoreKey,
  validateStorePrefix,
} from '../namespace/index.js'
