// RFC 6381 codec strings for the CODECS attribute (RFC 8216 §4.3.4.2) and the DASH @codecs,
// read from the encoded init segment rather than assumed from the options we passed x264
// (x264 picks the lowest profile that fits: an ultrafast encode is Constrained Baseline).

/** The `avc1.PPCCLL` of the first avcC box in an init segment, or undefined if there is none. */
export function avcCodecString(init: Uint8Array): string | undefined {
  // avcC payload: configurationVersion(1) AVCProfileIndication(1) profile_compatibility(1)
  // AVCLevelIndication(1) … (ISO/IEC 14496-15 §5.3.3.1). A linear scan for the fourcc is enough
  // for the small moov ffmpeg writes.
  for (let i = 4; i + 8 <= init.length; i++) {
    if (init[i] === 0x61 && init[i + 1] === 0x76 && init[i + 2] === 0x63 && init[i + 3] === 0x43) {
      if (init[i + 4] !== 1) continue
      const hex = [init[i + 5], init[i + 6], init[i + 7]].map((b) => (b ?? 0).toString(16).padStart(2, '0')).join('')
      return `avc1.${hex}`
    }
  }
  return undefined
}

/** AAC object type from ffprobe's profile name (ISO/IEC 14496-3 audio object types). */
export function aacCodecString(profile: string | undefined): string {
  if (profile === 'HE-AAC') return 'mp4a.40.5'
  if (profile === 'HE-AACv2') return 'mp4a.40.29'
  return 'mp4a.40.2'
}
