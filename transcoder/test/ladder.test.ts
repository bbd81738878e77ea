import t from 'tap'
import { buildLadder, LADDER } from '../src/ladder.js'

const sizes = (w: number, h: number): string[] =>
  buildLadder({ width: w, height: h }).map((r) => `${r.name}=${r.width}x${r.height}`)

t.test('builds the ladder from the source without upscaling', async (t) => {
  const table: [number, number, string[]][] = [
    [1920, 1080, ['240p=426x240', '360p=640x360', '480p=854x480', '720p=1280x720', '1080p=1920x1080']],
    [1280, 720, ['240p=426x240', '360p=640x360', '480p=854x480', '720p=1280x720']],
    [
      3840,
      2160,
      [
        '240p=426x240',
        '360p=640x360',
        '480p=854x480',
        '720p=1280x720',
        '1080p=1920x1080',
        '1440p=2560x1440',
        '2160p=3840x2160',
      ],
    ],
    [720, 1280, ['240p=240x426', '360p=360x640', '480p=480x854', '720p=720x1280']],
    [1080, 1920, ['240p=240x426', '360p=360x640', '480p=480x854', '720p=720x1280', '1080p=1080x1920']],
    [1440, 1080, ['240p=320x240', '360p=480x360', '480p=640x480', '720p=960x720', '1080p=1440x1080']],
    [640, 480, ['240p=320x240', '360p=480x360', '480p=640x480']],
    [1920, 800, ['240p=426x178', '360p=640x266', '480p=854x356', '720p=1280x534', '1080p=1920x800']],
    [853, 480, ['240p=426x240', '360p=640x360', '480p=852x480']],
    [1000, 1000, ['240p=240x240', '360p=360x360', '480p=480x480', '720p=720x720']],
  ]
  for (const [w, h, want] of table) t.same(sizes(w, h), want, `${w}x${h}`)
})

t.test('a source below the lowest rung gets one rung at its own even size', async (t) => {
  t.same(sizes(320, 200), ['240p=320x200'])
  t.same(sizes(175, 311), ['240p=174x310'])
  t.equal(buildLadder({ width: 320, height: 200 })[0]?.maxrateBps, 400_000)
})

t.test('every size is even and keeps the aspect ratio within a pixel', async (t) => {
  for (const [w, h] of [
    [1918, 1078],
    [1366, 768],
    [720, 1280],
    [4096, 2160],
    [1280, 536],
  ] as const) {
    for (const r of buildLadder({ width: w, height: h })) {
      t.equal(r.width % 2, 0)
      t.equal(r.height % 2, 0)
      t.ok(r.width <= w && r.height <= h, 'never upscales')
      t.ok(
        Math.abs(r.width / r.height - w / h) < 2 / Math.min(r.width, r.height) + 0.01,
        `${w}x${h} → ${r.width}x${r.height}`,
      )
    }
  }
})

t.test('uses the ladder bit rates of docs/architecture.md §8', async (t) => {
  t.same(
    LADDER.map((r) => [r.name, r.maxrateBps]),
    [
      ['240p', 400e3],
      ['360p', 800e3],
      ['480p', 1.5e6],
      ['720p', 3e6],
      ['1080p', 6e6],
      ['1440p', 10e6],
      ['2160p', 20e6],
    ],
  )
})

t.test('rejects a size that is not a positive integer', async (t) => {
  t.throws(() => buildLadder({ width: 0, height: 720 }), /source\.width/)
  t.throws(() => buildLadder({ width: 1280, height: 7.5 }), /source\.height/)
})
