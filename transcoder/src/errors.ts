import { isVcdnError, VcdnError } from '../../shared/errors/index.js'

// A job that failed with one of these will fail the same way every time: the queue should
// dead-letter it at once instead of burning its retries (docs/architecture.md §7.3).
const PERMANENT = new Set(['ERR_TRANSCODE_NOT_VIDEO', 'ERR_TRANSCODE_CORRUPT', 'ERR_TRANSCODE_INVALID_OUTPUT'])

/**
 * True when running the same job again may succeed: ffmpeg crashed or was killed, a timeout, an
 * abort (worker shutdown), or an unexpected error (disk full, …). False for a bad source or for
 * output that failed validation.
 */
export function isRetryableTranscodeError(err: unknown): boolean {
  return !(isVcdnError(err) && PERMANENT.has(err.code))
}

export { VcdnError }
