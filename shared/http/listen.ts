// Exclusive listen for the uWS adapter, and a coded error when the port cannot be had.
//
// uSockets sets SO_REUSEPORT on every listen socket unless asked for LIBUS_LISTEN_EXCLUSIVE_PORT.
// Without that option a second node started on a port that is in use binds "successfully" and
// the kernel then splits new connections between the two processes (whichever is stale). With it
// the bind fails whether the holder set SO_REUSEPORT or not, since Linux shares a port only among
// sockets that all set it. SO_REUSEADDR is unaffected, so a node still restarts at once on a port
// whose old connections sit in TIME_WAIT. uWS reports a failed listen as a bare `false`; the
// reason is read back by binding the same address once with Node's own listener (no
// SO_REUSEPORT), which fails with the errno the kernel gave uSockets.
import { createServer } from 'node:net'
import { VcdnError } from '../errors/index.js'

/** The uWS listen option that keeps SO_REUSEPORT off (exported by this build as 1). */
export const LISTEN_EXCLUSIVE_PORT = 1

/**
 * Why `host:port` could not be bound, as a coded error: ERR_LISTEN_IN_USE when another socket
 * holds it, ERR_LISTEN_FAILED (with the errno) otherwise. Called only after uWS refused a listen.
 */
export function listenError(host: string, port: number): Promise<VcdnError> {
  const where = `${host}:${port}`
  return new Promise((resolve) => {
    const probe = createServer()
    probe.once('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? 'unknown'
      resolve(
        code === 'EADDRINUSE'
          ? new VcdnError('ERR_LISTEN_IN_USE', where, { cause: err })
          : new VcdnError('ERR_LISTEN_FAILED', `${where} (${code})`, { cause: err }),
      )
    })
    // The port was free a moment later (the holder just exited): still a failed start.
    probe.listen({ host, port, exclusive: true }, () =>
      probe.close(() => resolve(new VcdnError('ERR_LISTEN_FAILED', `${where} (refused, then free)`))),
    )
  })
}

/**
 * Check that `host:port` is free by binding it once with Node's listener (no SO_REUSEPORT, so a
 * port any other socket holds fails), and resolve with the port (the kernel's pick for port 0).
 * For a listener that must itself bind with SO_REUSEPORT (the HTTPS listener, whose reload binds a
 * new socket beside the old one): exclusive among vcdn nodes, which all check first.
 */
export function reservePort(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', () => {
      listenError(host, port).then(reject, reject)
    })
    probe.listen({ host, port, exclusive: true }, () => {
      const address = probe.address()
      const bound = typeof address === 'object' && address !== null ? address.port : port
      probe.close(() => resolve(bound))
    })
  })
}
