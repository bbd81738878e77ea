// Small typed shapes over hls-parser's classes, so callers never depend on the library's types.

export interface MediaSegmentInfo {
  /** URI as written in the playlist (relative to the playlist). */
  readonly uri: string
  /** EXTINF duration in seconds. */
  readonly durationS: number
}

export interface MediaPlaylistInfo {
  readonly version: number | undefined
  readonly targetDurationS: number
  readonly mediaSequence: number
  readonly playlistType: 'VOD' | 'EVENT' | undefined
  readonly isEndList: boolean
  readonly isIndependentSegments: boolean
  /** EXT-X-MAP URI of the first segment (CMAF init segment), if any. */
  readonly mapUri: string | undefined
  readonly segments: readonly MediaSegmentInfo[]
  readonly totalDurationS: number
}

export interface VariantInfo {
  readonly uri: string
  readonly bandwidth: number
  readonly averageBandwidth: number | undefined
  readonly codecs: string | undefined
  readonly resolution: { readonly width: number; readonly height: number } | undefined
  readonly frameRate: number | undefined
  readonly audioGroupId: string | undefined
  readonly subtitlesGroupId?: string
}

export interface AudioRenditionInfo {
  readonly groupId: string
  readonly name: string
  readonly uri: string | undefined
  readonly isDefault: boolean
  readonly isAutoselect: boolean
  /** LANGUAGE (RFC 5646), when the playlist gives one. */
  readonly language?: string
}

export interface MasterPlaylistInfo {
  readonly version: number | undefined
  readonly isIndependentSegments: boolean
  readonly variants: readonly VariantInfo[]
  readonly audio: readonly AudioRenditionInfo[]
  /** EXT-X-MEDIA TYPE=SUBTITLES renditions (same shape as audio). */
  readonly subtitles?: readonly AudioRenditionInfo[]
}

/** Input of formatMediaPlaylist: a VOD CMAF media playlist (RFC 8216 §4.3.3). */
export interface VodMediaPlaylist {
  readonly mapUri: string
  readonly segments: readonly MediaSegmentInfo[]
  /** EXT-X-MEDIA-SEQUENCE; defaults to 1 so it matches seg_00001 and the DASH startNumber. */
  readonly mediaSequence?: number
}

/** Input of formatMasterPlaylist (RFC 8216 §4.3.4). */
export interface MasterVariant {
  readonly uri: string
  readonly bandwidth: number
  readonly averageBandwidth: number
  readonly codecs: string
  readonly width: number
  readonly height: number
  readonly frameRate: number
  readonly audioGroupId?: string
  readonly subtitlesGroupId?: string
}

export interface MasterAudioRendition {
  readonly groupId: string
  readonly name: string
  readonly uri: string
  readonly language?: string
  readonly channels?: number
}

/** A WebVTT subtitles rendition (RFC 8216 §4.3.4.1, TYPE=SUBTITLES). */
export interface MasterSubtitleRendition {
  readonly groupId: string
  readonly name: string
  readonly uri: string
  readonly language?: string
  readonly isDefault?: boolean
}

export interface MasterPlaylist {
  readonly variants: readonly MasterVariant[]
  readonly audio: readonly MasterAudioRendition[]
  readonly subtitles?: readonly MasterSubtitleRendition[]
}
