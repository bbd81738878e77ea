export { HlsParseError, mediaSegments, nextSegments, parseMaster, parseMedia } from './parse.js'
export { formatMasterPlaylist, formatMediaPlaylist } from './format.js'
export type {
  AudioRenditionInfo,
  MasterAudioRendition,
  MasterSubtitleRendition,
  MasterPlaylist,
  MasterPlaylistInfo,
  MasterVariant,
  MediaPlaylistInfo,
  MediaSegmentInfo,
  VariantInfo,
  VodMediaPlaylist,
} from './types.js'
export { isAppendableParam, PlaylistRewriteError, rewriteHlsPlaylist, withQueryParam } from './rewrite.js'
export { rewriteDashManifest } from './rewrite-dash.js'
