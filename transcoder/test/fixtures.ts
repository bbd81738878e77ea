// Test sources generated with lavfi: tiny, fast to encode, and real files ffmpeg must decode.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeClip as makeLavfiClip, seededBytes } from '../../shared/testing/index.js'

export interface ClipOptions {
  readonly width?: number
  readonly height?: number
  readonly durationS?: number
  readonly fps?: string
  readonly hasAudio?: boolean
}

export function makeClip(dir: string, name: string, o: ClipOptions = {}): string {
  return makeLavfiClip(join(dir, name), {
    seconds: o.durationS ?? 8,
    width: o.width ?? 1280,
    height: o.height ?? 720,
    fps: o.fps ?? '30',
    crf: 30,
    ...(o.hasAudio !== undefined ? { hasAudio: o.hasAudio } : {}),
  })
}

export function makeAudioOnly(dir: string): string {
  const path = join(dir, 'audio-only.m4a')
  execFileSync('ffmpeg', [
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    'sine=frequency=440:sample_rate=48000',
    '-t',
    '2',
    '-c:a',
    'aac',
    path,
  ])
  return path
}

export function makeImage(dir: string): string {
  const path = join(dir, 'still.png')
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=320x240', '-frames:v', '1', path])
  return path
}

/**
 * 64 KiB of noise, the same bytes every run: about 1 in 100 draws of truly random bytes probes as
 * a text subtitle stream (checked: 3 of 300 with ffprobe), which is ERR_TRANSCODE_NOT_VIDEO, not
 * ERR_TRANSCODE_CORRUPT (a probe test failed that way once). These bytes are invalid data to ffprobe.
 */
export function makeGarbage(dir: string): string {
  const path = join(dir, 'garbage.mp4')
  writeFileSync(path, seededBytes(64 * 1024))
  return path
}

/** The first third of a (moov-at-the-end) mp4: the index is gone. */
export function makeTruncated(dir: string, from: string): string {
  const path = join(dir, 'truncated.mp4')
  const bytes = readFileSync(from)
  writeFileSync(path, bytes.subarray(0, Math.floor(bytes.length / 3)))
  return path
}

/** A faststart mp4 whose media data is overwritten with noise: the header parses, nothing decodes. */
export function makeCorruptData(dir: string): string {
  const good = join(dir, 'faststart.mp4')
  execFileSync('ffmpeg', [
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    'testsrc2=size=320x240:rate=30',
    '-t',
    '2',
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-movflags',
    '+faststart',
    good,
  ])
  const bytes = readFileSync(good)
  const mdat = bytes.indexOf(Buffer.from('mdat'))
  const noise = randomBytes(bytes.length - mdat - 4)
  noise.copy(bytes, mdat + 4)
  const path = join(dir, 'corrupt-data.mp4')
  writeFileSync(path, bytes)
  return path
}
