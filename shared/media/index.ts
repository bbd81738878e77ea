export {
  durationOf,
  ffprobeArgs,
  firstSecondDecodeArgs,
  framesFromProgress,
  mainVideoStream,
  ratio,
} from './ffprobe.js'
export type { FfprobeJson, FfprobeStream } from './ffprobe.js'
export { CaptionParseError, formatWebVtt, MAX_CUES, parseCaptions, vttTimestamp } from './captions.js'
export type { Cue } from './captions.js'
