export { signToken, parseToken, MAX_TOKEN_CHARS, type TokenPayload } from './format.js'
export { TokenVerifier, type TokenVerifierOptions, type ClientAddress } from './verifier.js'
export { isVideoDirAcl, signedPath, splitTokenPath, type SignedPathOptions } from './path.js'
export { normaliseIp } from './ip.js'
