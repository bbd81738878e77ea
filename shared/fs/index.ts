// File helpers the cache, the store and the origin share.
export { writeAll, type WritableHandle } from './write-all.js'
