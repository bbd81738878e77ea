export {
  durationOf,
  ffprobeArgs,
  firstSecondDecodeArgs,
  framesFromProgress,
  mainVideoStream,
  ratio,
} from './ffprobe.js'
export type { FfprobeJson, FfprobeStream } from './ffprobe.js'
