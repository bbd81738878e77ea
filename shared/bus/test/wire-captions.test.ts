import t from 'tap'
import { parseCaptionsResponse } from '../index.js'

t.test('a captions response is a list of language-tagged WebVTT files, checked field by field', async (t) => {
  t.same(parseCaptionsResponse({ captions: [{ language: 'pt-BR', vtt: 'WEBVTT\n' }] }), {
    captions: [{ language: 'pt-BR', vtt: 'WEBVTT\n' }],
  })
  t.same(parseCaptionsResponse({ captions: [] }), { captions: [] })
  const table: [string, unknown, RegExp][] = [
    ['not an object', null, /captions response/],
    ['an array', [], /captions must be an array/],
    ['no list', {}, /captions must be an array/],
    ['a path as language', { captions: [{ language: '../x', vtt: '' }] }, /captions\[0\]\.language/],
    ['no text', { captions: [{ language: 'en' }] }, /captions\[0\]\.vtt/],
  ]
  for (const [name, body, message] of table)
    t.throws(() => parseCaptionsResponse(body), { code: 'ERR_API_BODY', message }, name)
})
