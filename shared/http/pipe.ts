import type { ResponseSink } from './types.js'

/**
 * Stream an async iterable (file stream, upstream body) into a sink honouring backpressure. Stops
 * reading as soon as the client goes away. Throws what the source throws; the caller decides
 * whether to abort the sink.
 */
export async function pipeToSink(source: AsyncIterable<Uint8Array>, sink: ResponseSink): Promise<number> {
  let bytes = 0
  for await (const chunk of source) {
    if (sink.isAborted) break
    bytes += chunk.byteLength
    await sink.write(chunk)
  }
  return bytes
}
