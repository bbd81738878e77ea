export type { HeaderMap, ServerRequest, ResponseSink } from './types.js'
export {
  HttpServer,
  DEFAULT_SEND_TIMEOUT_S,
  sendTimeoutSchema,
  type Handler,
  type HttpServerOptions,
  type IncomingRequest,
} from './server.js'
export { corsProblems, DEFAULT_CORS_MAX_AGE_S, type CorsOptions } from './cors.js'
export {
  tlsSchema,
  tlsProblems,
  tlsOptionsFrom,
  type TlsConfig,
  type TlsLog,
  type TlsOptions,
  type TlsSniEntry,
} from './tls.js'
export { sendError, sendJson, sendText, secretEquals } from './respond.js'
export { createAdminServer, type AdminOptions } from './admin.js'
export { parseRange, contentRange, type RangeResult } from './range.js'
export {
  evaluatePreconditions,
  formatHttpDate,
  isIfRangeSatisfied,
  parseHttpDate,
  type Precondition,
  type Validators,
} from './conditional.js'
export { pipeToSink } from './pipe.js'
export { TrustedProxies, clientAddressOf, trustedProxiesProblems } from './client-address.js'
export { reservePort } from './listen.js'
export { ProxyV1Listener, frontEndAddress, frontEndTarget, type ProxyV1ListenerOptions } from './proxy-v1.js'
