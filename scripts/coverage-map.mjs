// node-tap's coverage map (package.json "tap"."coverage-map"): for each test file, the source files
// whose coverage it answers for, so a file's coverage says what its own tests exercise rather than
// what any test happened to run through (the lru-cache / node-tap convention).
//   shared/<module>/test/**  → shared/<module>/**/*.ts (not its test/ folder)
//   <tier>/test/**           → <tier>/src/**/*.ts
//   cli/test/**              → cli/*.ts
//   bench/test/**            → bench/**/*.ts (not its test/ folder)
// Integration tests drive the built dist/ processes: tap's process tracking follows those child
// processes, and their coverage of dist/<tier>/src/*.js is mapped back to <tier>/src/*.ts through
// the source maps tsc writes, so they answer for their tier's source like its unit tests do.
const TIERS = new Set(['origin', 'shield', 'edge', 'transcoder'])

/** @param {string} testFile path relative to the project root, '/'-separated */
export default function coverageMap(testFile) {
  const parts = testFile.split('/')
  const [root, second] = parts
  if (root === 'shared' && second !== undefined && parts[2] === 'test') {
    return [`shared/${second}/*.ts`, `shared/${second}/!(test)/**/*.ts`]
  }
  if (root !== undefined && TIERS.has(root)) return [`${root}/src/**/*.ts`]
  if (root === 'cli') return ['cli/*.ts']
  if (root === 'bench') return ['bench/*.ts', 'bench/!(test)/**/*.ts']
  // A test file outside these folders answers for nothing rather than for everything.
  return null
}
