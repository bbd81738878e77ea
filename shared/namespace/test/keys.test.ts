import t from 'tap'
import {
  isValidPath,
  MAX_KEY_BYTES,
  MAX_QUERY_BYTES,
  MAX_STORE_KEY_BYTES,
  pathProblem,
  validatePath,
  validateQuery,
  validateStoreKey,
} from '../index.js'

t.test('a store key below the length limit is, with a leading slash, a valid key path', async (t) => {
  t.equal(MAX_STORE_KEY_BYTES, MAX_KEY_BYTES)
  const longest = `/${[...Array.from({ length: 5 }, () => 'x'.repeat(200)), 'w'.repeat(18)].join('/')}`
  t.equal(longest.length, MAX_KEY_BYTES)
  t.equal(validatePath(longest), longest)
  t.doesNotThrow(() => validateStoreKey(longest.slice(1)))
  t.throws(() => validatePath(`${longest}w`), { code: 'ERR_REQUEST_PATH' })
  t.doesNotThrow(() => validateStoreKey(`${longest.slice(1)}w`), 'the store allows one byte more')
  t.throws(() => validateStoreKey(`${longest.slice(1)}ww`), { code: 'ERR_STORE_KEY' })
})

t.test('pathProblem names what is wrong and isValidPath agrees with validatePath', async (t) => {
  t.equal(pathProblem('/v/a/x.m4s'), null)
  t.equal(pathProblem('/v/%2E./x'), 'path contains a dot segment')
  t.equal(pathProblem('/v/a%2Fb'), 'path contains an encoded separator')
  t.equal(pathProblem('/v/a%0a'), 'path contains an encoded control character')
  t.equal(pathProblem('/v/a%g0'), 'path has invalid percent-encoding')
  t.equal(pathProblem('/v//a'), 'path contains an empty segment')
  for (const path of ['/', '/v/abc/', '/v/...', '/v/a%2e%2eb', '/v//a', '/v/%2e', 'v/a', '/v/a b']) {
    t.equal(isValidPath(path), pathProblem(path) === null, path)
  }
})

t.test('a query is printable ASCII without # with valid percent-encoding, at most MAX_QUERY_BYTES', async (t) => {
  for (const q of ['a=1', 'a=%20&b', 'x'.repeat(MAX_QUERY_BYTES)]) t.equal(validateQuery(q), q)
  for (const q of ['a=1#x', 'a b', 'a=%zz', 'a=%2', 'caf\u00e9', 'x'.repeat(MAX_QUERY_BYTES + 1)])
    t.throws(() => validateQuery(q), { code: 'ERR_REQUEST_PATH' }, q)
})
