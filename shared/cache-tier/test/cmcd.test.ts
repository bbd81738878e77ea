import t from 'tap'
import { CMCD_MAX_CHARS, CMCD_MAX_MEMBERS, cmcdOf, parseCmcd } from '../cmcd.js'

const request = (headers: Record<string, string>, query = '') => ({
  header: (name: string) => headers[name],
  query,
})

t.test('reads the keys a CDN uses with their CTA-5004 types', async (t) => {
  const cases: [string, Record<string, unknown>][] = [
    ['sid="6e2fb550-c457-11e9-bb97-0800200c9a66"', { sid: '6e2fb550-c457-11e9-bb97-0800200c9a66' }],
    ['cid="faec5fc2-ac30-11eabb37-0242ac130002"', { cid: 'faec5fc2-ac30-11eabb37-0242ac130002' }],
    ['br=3200,bl=21300,mtp=25400', { br: 3200, bl: 21300, mtp: 25400 }],
    ['bs,su', { bs: true, su: true }],
    ['bs=?0,su=?1', { bs: false, su: true }],
    ['ot=v', { ot: 'v' }],
    ['ot=av', { ot: 'av' }],
    ['nor="..%2F300kbps%2Fsegment35.m4v"', { nor: '../300kbps/segment35.m4v' }],
    ['nor="seg_00004.m4s",nrr="12323-48763"', { nor: 'seg_00004.m4s', nrr: '12323-48763' }],
    ['nrr="500-"', { nrr: '500-' }],
    [' br=100 , bl=200', { br: 100, bl: 200 }],
    ['br=1,br=2', { br: 2 }],
    ['sid="a\\"b\\\\c"', { sid: 'a"b\\c' }],
    ['sid="x,y",br=5', { sid: 'x,y', br: 5 }],
    ['d=4004,pr=1.08,st=v,sf=h,v=1,tb=6000,dl=18500,rtp=15000', {}],
  ]
  for (const [text, want] of cases) t.same(parseCmcd(text), want, text)
})

t.test('skips members it cannot read and keeps the rest', async (t) => {
  const cases: [string, Record<string, unknown>][] = [
    ['br=abc,bl=100', { bl: 100 }],
    ['br=-5,bl=100', { bl: 100 }],
    ['br=1.5,bl=100', { bl: 100 }],
    ['br=99999999999999999999999,bl=100', { bl: 100 }],
    ['sid=unquoted,bl=100', { bl: 100 }],
    ['sid="' + 'x'.repeat(65) + '",bl=100', { bl: 100 }],
    ['sid="unterminated,bl=100', {}],
    ['sid="bad\\escape",bl=100', { bl: 100 }],
    ['sid="tab\there",bl=100', { bl: 100 }],
    ['ot=zz,bl=100', { bl: 100 }],
    ['ot="v",bl=100', { bl: 100 }],
    ['bs=1,bl=100', { bl: 100 }],
    ['nor="%E0%A4%A",bl=100', { bl: 100 }],
    ['nor="",bl=100', { bl: 100 }],
    ['nrr="a-b",bl=100', { bl: 100 }],
    ['nrr="-",bl=100', { bl: 100 }],
    ['BR=5,bl=100', { bl: 100 }],
    ['=5,,,bl=100', { bl: 100 }],
    ['__proto__=1,constructor="x",bl=100', { bl: 100 }],
    ['br=?,bl=100', { bl: 100 }],
    ['br=5;p=1,bl=100', { br: 5, bl: 100 }],
  ]
  for (const [text, want] of cases) t.same(parseCmcd(text), want, text)
})

t.test('never throws on hostile input and reads a bounded amount', async (t) => {
  const hostile = [
    '',
    ',',
    '"',
    '=',
    '?',
    'sid="\\',
    'a'.repeat(CMCD_MAX_CHARS + 1),
    'br=1,'.repeat(CMCD_MAX_CHARS),
    '\u0000\uffff\ud800',
    'sid="é"',
    'x=' + '9'.repeat(4000),
    undefined as unknown as string,
    42 as unknown as string,
  ]
  for (const text of hostile) t.doesNotThrow(() => parseCmcd(text), JSON.stringify(String(text).slice(0, 20)))
  t.same(parseCmcd('br=1,' + 'x'.repeat(CMCD_MAX_CHARS)), {}, 'a field over the bound is not read at all')
  const many = Array.from({ length: CMCD_MAX_MEMBERS }, () => 'v=1').join(',') + ',br=7'
  t.same(parseCmcd(many), {}, 'members past the bound are not read')
  // A random soup of the grammar's characters: never throws, only known keys come out.
  let x = 12345
  const alphabet = 'brsidnoq"\\=,?;-.0123456789 %'
  for (let n = 0; n < 2000; n++) {
    let s = ''
    for (let i = 0; i < 40; i++) {
      x = (x * 1103515245 + 12345) & 0x7fffffff
      s += alphabet[x % alphabet.length]
    }
    const got = parseCmcd(s)
    for (const k of Object.keys(got)) {
      if (!['sid', 'cid', 'br', 'bl', 'bs', 'su', 'mtp', 'ot', 'nor', 'nrr'].includes(k))
        t.fail(`unknown key ${k} from ${s}`)
    }
  }
})

t.test('a request carries CMCD in four headers and the CMCD= query parameter', async (t) => {
  t.equal(cmcdOf(request({})), null, 'no CMCD')
  t.equal(cmcdOf(request({}, 'a=1&b=2')), null, 'a query without CMCD')
  t.same(
    cmcdOf(
      request({
        'cmcd-request': 'bl=21300,nor="seg_3.m4s",su',
        'cmcd-object': 'br=3200,ot=v',
        'cmcd-status': 'bs,rtp=15000',
        'cmcd-session': 'cid="movie",sid="abc"',
      }),
    ),
    { bl: 21300, nor: 'seg_3.m4s', su: true, br: 3200, ot: 'v', bs: true, cid: 'movie', sid: 'abc' },
    'headers',
  )
  t.same(
    cmcdOf(request({}, 'x=1&CMCD=br%3D3200%2Cnor%3D%22seg_2.m4s%22%2Csid%3D%22s1%22&y=2')),
    { br: 3200, nor: 'seg_2.m4s', sid: 's1' },
    'query, among other parameters',
  )
  t.same(cmcdOf(request({}, 'CMCD=ot%3Dv')), { ot: 'v' }, 'query, first parameter')
  t.same(cmcdOf(request({}, 'XCMCD=ot%3Dv')), null, 'another parameter ending in CMCD')
  t.same(cmcdOf(request({}, 'CMCD=%E0%A4%A')), null, 'bad percent-encoding is ignored')
  t.same(cmcdOf(request({}, 'CMCD=' + 'a'.repeat(CMCD_MAX_CHARS * 3))), null, 'an oversized query is not read')
})
