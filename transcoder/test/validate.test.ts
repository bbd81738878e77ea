import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { tempDir } from '../../shared/testing/index.js'
import { isRetryableTranscodeError } from '../src/errors.js'
import { measureRendition, type MeasuredRendition } from '../src/measure.js'
import { transcode } from '../src/pipeline.js'
import { validateOutput } from '../src/validate.js'
import { makeClip } from './fixtures.js'

const tmp = tempDir('vcdn-validate-')
t.teardown(() => tmp.remove())

// One small real output, copied afresh for each broken variant.
const source = makeClip(tmp.dir, 'small.mp4', { width: 320, height: 180, durationS: 6 })
const good = await transcode({ sourcePath: source, workDir: tmp.dir, videoId: 'v', preset: 'ultrafast' })
const goodOut = join(good.jobDir, 'out')

async function measured(outDir: string): Promise<{ video: MeasuredRendition[]; audio: MeasuredRendition }> {
  const m = async (name: string): Promise<MeasuredRendition> =>
    measureRendition({
      name,
      dir: join(outDir, name),
      initUri: 'init.mp4',
      playlistText: readFileSync(join(outDir, name, 'index.m3u8'), 'utf8'),
    })
  return { video: [await m('240p')], audio: await m('audio') }
}

let n = 0
function copy(): string {
  const dir = join(tmp.dir, `copy-${n++}`)
  cpSync(goodOut, dir, { recursive: true })
  return dir
}

t.test('a source below the lowest rung is published as one rung at its own size', async (t) => {
  t.same(
    good.renditions.map((r) => `${r.name}=${r.width}x${r.height}`),
    ['240p=320x180'],
  )
})

t.test('accepts the output as produced', async (t) => {
  const m = await measured(goodOut)
  await t.resolves(validateOutput({ outDir: goodOut, ...m, requiredFiles: ['manifest.mpd'] }))
})

t.test('rejects broken output with a non-retryable ERR_TRANSCODE_INVALID_OUTPUT', async (t) => {
  const m = await measured(goodOut)
  const rung = m.video[0] as MeasuredRendition
  const cases: [string, RegExp, (dir: string) => void, Partial<{ video: MeasuredRendition[] }>?][] = [
    [
      'a master BANDWIDTH below the measured peak',
      /below its measured peak/,
      (d) =>
        writeFileSync(
          join(d, 'master.m3u8'),
          readFileSync(join(d, 'master.m3u8'), 'utf8').replace(/BANDWIDTH=\d+,AVERAGE/, 'BANDWIDTH=1000,AVERAGE'),
        ),
    ],
    ['a missing segment', /seg_00002\.m4s is missing/, (d) => rmSync(join(d, '240p', 'seg_00002.m4s'))],
    [
      'a media playlist without EXT-X-MAP',
      /EXT-X-MAP/,
      (d) =>
        writeFileSync(
          join(d, '240p', 'index.m3u8'),
          readFileSync(join(d, '240p', 'index.m3u8'), 'utf8').replace(/#EXT-X-MAP.*\n/, ''),
        ),
    ],
    [
      'a master that is not a playlist',
      /master\.m3u8: invalid playlist/,
      (d) => writeFileSync(join(d, 'master.m3u8'), 'nope'),
    ],
    ['a missing MPD', /manifest\.mpd is missing/, (d) => rmSync(join(d, 'manifest.mpd'))],
    [
      'a segment that does not start with a keyframe',
      /seg_00002\.m4s: does not start with a keyframe/,
      () => {},
      { video: [{ ...rung, segments: rung.segments.map((s, i) => ({ ...s, startsWithKeyframe: i === 0 })) }] },
    ],
    [
      'rungs whose boundaries differ',
      /240q\/seg_00001\.m4s: starts at/,
      (d) => {
        // A second rung, listed in the master, whose packets start 100 ticks later.
        cpSync(join(d, '240p'), join(d, '240q'), { recursive: true })
        const master = readFileSync(join(d, 'master.m3u8'), 'utf8')
        const variant = master.split('\n').slice(-3).join('\n').replace('240p/', '240q/')
        writeFileSync(join(d, 'master.m3u8'), `${master.trimEnd()}\n${variant}`)
      },
      {
        video: [
          rung,
          { ...rung, name: '240q', segments: rung.segments.map((s) => ({ ...s, startTs: s.startTs + 100 })) },
        ],
      },
    ],
  ]
  for (const [name, reason, breakIt, override] of cases) {
    const dir = copy()
    breakIt(dir)
    const err = await validateOutput({ outDir: dir, ...m, ...override, requiredFiles: ['manifest.mpd'] }).catch(
      (e: unknown) => e,
    )
    t.match(err, { code: 'ERR_TRANSCODE_INVALID_OUTPUT', message: reason }, name)
    t.equal(isRetryableTranscodeError(err), false)
  }
})
