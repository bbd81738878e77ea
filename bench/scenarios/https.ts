// https-segment and https-playlist: segment-hit and playlist-hit over HTTPS (TLS 1.3,
// TLS_AES_128_GCM_SHA256, one certificate for both edges), vcdn's edge HTTPS listener against
// nginx's `ssl` listener with a shared session cache, loaded with wrk over keep-alive connections
// (one handshake per connection) in alternating runs. Neither server has kTLS here: both encrypt
// in user space, and nginx's sendfile falls back to reading the file and SSL_write.
import type { RunContext, ScenarioResult } from '../lib/report.js'
import { mediaPlaylist, PLAYLIST_PATH, SEGMENT_PATH, segmentBody } from './content.js'
import { hitComparison } from './hit.js'

export const httpsSegment = (ctx: RunContext): Promise<ScenarioResult> =>
  hitComparison(ctx, {
    scenario: 'https-segment',
    path: SEGMENT_PATH,
    body: segmentBody(),
    metric: 'bytesPerSec',
    targetRatio: 1.5,
    isJudgedPerCore: true,
    client: 'wrk',
    isHttps: true,
  })

export const httpsPlaylist = (ctx: RunContext): Promise<ScenarioResult> =>
  hitComparison(ctx, {
    scenario: 'https-playlist',
    path: PLAYLIST_PATH,
    body: mediaPlaylist(),
    metric: 'reqPerSec',
    targetRatio: 1.3,
    isJudgedPerCore: true,
    client: 'wrk',
    isHttps: true,
  })
