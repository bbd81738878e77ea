// Media types come from the content namespace's one extension table (docs/architecture.md §2).
export { contentTypeFor, DEFAULT_CONTENT_TYPE } from '../namespace/index.js'
