import t from 'tap'
import { isVcdnError } from '../../errors/index.js'
import { normalizeKey } from '../index.js'

const good = [
  '/',
  '/v/abc/master.m3u8',
  '/v/abc/720p/seg_00001.m4s',
  '/v/abc/',
  '/v/a%20b/x.mp4',
  '/v/abc/..x/file',
  '/v/abc/...',
  '/v/abc/.hidden',
  '/v/%2e%2ex/a',
  '/v/' + 'a'.repeat(1000),
]

const bad: Array<[string, string]> = [
  ['dot-dot segment', '/v/../etc/passwd'],
  ['trailing dot-dot', '/v/abc/..'],
  ['dot segment', '/v/./abc'],
  ['encoded dot-dot', '/v/%2e%2e/x'],
  ['encoded dot-dot upper case', '/v/%2E%2E/x'],
  ['mixed encoded dot-dot', '/v/%2E./x'],
  ['mixed encoded dot-dot reversed', '/v/.%2e/x'],
  ['encoded dot segment', '/v/%2e/x'],
  ['encoded slash', '/v/a%2fb'],
  ['encoded slash upper case', '/v/a%2Fb'],
  ['encoded backslash', '/v/a%5cb'],
  ['raw backslash', '/v/a\\b'],
  ['raw NUL', '/v/a\0b'],
  ['encoded NUL', '/v/a%00b'],
  ['encoded control char', '/v/a%0ab'],
  ['raw control char', '/v/a\nb'],
  ['empty segment', '/v//abc'],
  ['leading double slash', '//v/abc'],
  ['over-long', '/v/' + 'a'.repeat(1022)],
  ['no leading slash', 'v/x'],
  ['empty', ''],
  ['invalid percent-encoding', '/v/a%zz'],
  ['truncated percent-encoding', '/v/a%2'],
  ['space', '/v/a b'],
  ['non-ASCII', '/v/caf\u00e9'],
  ['query mark', '/v/a?b'],
]

void t.test('normalizeKey accepts well-formed absolute paths unchanged', async (t) => {
  for (const path of good) t.equal(normalizeKey(path), path, path)
})

void t.test(
  'normalizeKey rejects traversal, encoded separators, NUL, control chars and over-long paths with ERR_REQUEST_PATH',
  async (t) => {
    for (const [name, path] of bad) {
      let caught: unknown
      try {
        normalizeKey(path)
      } catch (err) {
        caught = err
      }
      t.ok(isVcdnError(caught) && caught.code === 'ERR_REQUEST_PATH' && caught.status === 400, name)
    }
  },
)
