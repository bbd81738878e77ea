// `--rps`: a raw request rate against one URL with autocannon (overallRate), measured into the
// same Recorder as the players: TTFB from the request write to the parsed response head, X-Cache
// and Content-Length from that head.
import { REPEAT_AFTER_MS } from './players.js'
import type { Recorder } from './stats.js'

export interface RpsOptions {
  url: URL
  rps: number
  connections: number
  durationS: number
  timeoutMs: number
  headers: Readonly<Record<string, string>>
  recorder: Recorder
  stop: AbortSignal
}

// autocannon 8 ships no types; the part of its API used here (lib/run.js, lib/httpClient.js).
interface ResponseHead {
  statusCode: number
  /** Flat [name, value, name, value, …] as received. */
  headers: string[]
}
interface AutocannonClient {
  on(event: 'request', listener: () => void): void
  on(event: 'headers', listener: (head: ResponseHead) => void): void
}
interface Tracker extends PromiseLike<unknown> {
  on(event: 'response', listener: (client: unknown, status: number, bytes: number, ms: number) => void): void
  on(event: 'reqError', listener: (err: Error) => void): void
  stop(): void
}
type Autocannon = (opts: {
  url: string
  connections: number
  overallRate: number
  duration: number
  timeout: number
  headers: Record<string, string>
  setupClient: (client: AutocannonClient) => void
}) => Tracker

export async function runRps(o: RpsOptions): Promise<void> {
  const autocannon = (await import('autocannon')).default as unknown as Autocannon
  const { recorder } = o
  // Every request but the first ones asks for a URL already fetched (players.ts REPEAT_AFTER_MS).
  let firstAnswerMs = Infinity
  const tracker = autocannon({
    url: o.url.href,
    connections: o.connections,
    overallRate: o.rps,
    duration: o.durationS,
    // autocannon's timeout is in seconds.
    timeout: Math.max(1, Math.ceil(o.timeoutMs / 1000)),
    headers: { ...o.headers },
    setupClient: (client) => {
      // One request in flight per connection (no pipelining): the head answers the last write.
      let sentAt = 0
      client.on('request', () => {
        sentAt = performance.now()
      })
      client.on('headers', (head) => {
        let xCache: string | undefined
        let bytes = 0
        for (let i = 0; i + 1 < head.headers.length; i += 2) {
          const name = (head.headers[i] as string).toLowerCase()
          if (name === 'x-cache') xCache = head.headers[i + 1]
          else if (name === 'content-length') bytes = Number(head.headers[i + 1]) || 0
        }
        recorder.response({
          kind: 'url',
          status: head.statusCode,
          bytes,
          ttfbMs: performance.now() - sentAt,
          xCache,
          isRepeat: performance.now() - firstAnswerMs >= REPEAT_AFTER_MS,
        })
        firstAnswerMs = Math.min(firstAnswerMs, performance.now())
      })
    },
  })
  tracker.on('reqError', (err) => {
    recorder.failure('url', /timed out/.test(err.message) ? 'ERR_UPSTREAM_TIMEOUT' : 'ERR_UPSTREAM_CONNECT')
  })
  const onStop = (): void => tracker.stop()
  o.stop.addEventListener('abort', onStop, { once: true })
  try {
    await tracker
  } finally {
    o.stop.removeEventListener('abort', onStop)
  }
}
