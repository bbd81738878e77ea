export { HlsParseError, mediaSegments, nextSegments, parseMaster, parseMedia } from './parse.js'
export { formatMasterPlaylist, formatMediaPlaylist } from './format.js'
export type {
  AudioRenditionInfo,
  MasterAudioRendition,
  MasterPlaylist,
  MasterPlaylistInfo,
  MasterVariant,
  MediaPlaylistInfo,
  MediaSegmentInfo,
  VariantInfo,
  VodMediaPlaylist,
} from './types.js'
