import { timingSafeEqual, type KeyObject } from 'node:crypto'
import { VcdnError } from '../errors/index.js'
import { isValidPath } from '../namespace/index.js'
import { keyObjects, mac, MAX_TOKEN_CHARS, parseToken } from './format.js'
import { normaliseIp } from './ip.js'

export interface TokenVerifierOptions {
  /** kid → secret; every listed key verifies (rotation). */
  keys: Record<string, string>
  /** Clock, epoch ms. */
  now?: () => number
  /** Verified tokens remembered (default 10_000; 0 disables the memo). */
  memoMax?: number
}

/** What a verified token grants; the memo holds these. */
interface Grant {
  expMs: number
  acl: string
  ip: string | undefined
  /** Memo insertion number when last (re)inserted: how recent it is, without moving it. */
  seq: number
  /** The last path that passed this grant's scope check (a pure function of acl and path). */
  okPath: string | null
}

/** The client address, or something that reads it on demand (the HTTP request: most tokens are
 * not IP-bound, and reading the peer address is not free). */
export type ClientAddress = string | { readonly remoteAddress: string }

const DEFAULT_MEMO_MAX = 10_000

/**
 * Verifies playback tokens on the edge's hot path (docs/architecture.md §3).
 *
 * A token whose signature checked out is remembered (token → grant) in a bounded LRU owned by
 * this instance, so the segments of one playback session pay one HMAC in total. A memo hit still
 * checks expiry, scope and client address on every call: those depend on the clock, the path and
 * the connection, not only on the token. The hit path does a Map lookup, a clock read and string
 * compares, and allocates nothing unless it refuses. Recency is refreshed (delete + re-insert) only
 * when the token has drifted into the older half of the memo: a token in the newer half cannot be
 * the LRU victim, so a hot token costs one Map lookup, not a Map rewrite, per request.
 */
export class TokenVerifier {
  readonly #keys: Map<string, KeyObject>
  readonly #now: () => number
  readonly #memoMax: number
  readonly #memo = new Map<string, Grant>()
  /** Insertions into the memo so far (owned by this instance). */
  #seq = 0

  constructor(opts: TokenVerifierOptions) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('TokenVerifier: options must be an object')
    this.#keys = keyObjects(opts.keys, 'TokenVerifier: options.keys')
    if (opts.now !== undefined && typeof opts.now !== 'function')
      throw new TypeError('TokenVerifier: options.now must be a function')
    this.#now = opts.now ?? Date.now
    const memoMax = opts.memoMax ?? DEFAULT_MEMO_MAX
    if (!Number.isSafeInteger(memoMax) || memoMax < 0)
      throw new TypeError('TokenVerifier: options.memoMax must be an integer >= 0')
    this.#memoMax = memoMax
  }

  /** Number of remembered tokens (for metrics and tests). */
  get memoSize(): number {
    return this.#memo.size
  }

  /**
   * @param path the content path after stripping `/t/{token}`, already normalised by the caller.
   * @param client the client address, or the request (its address is read only for IP-bound tokens).
   * Throws VcdnError ERR_TOKEN_MALFORMED | ERR_TOKEN_KEY | ERR_TOKEN_SIGNATURE | ERR_TOKEN_EXPIRED |
   * ERR_TOKEN_SCOPE | ERR_TOKEN_IP. Messages never contain the token.
   */
  verify(token: string, path: string, client: ClientAddress): void {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_CHARS) {
      throw new VcdnError('ERR_TOKEN_MALFORMED', 'length')
    }
    let grant = this.#memo.get(token)
    if (grant === undefined) {
      grant = this.#verifySignature(token)
    } else if (this.#seq - grant.seq >= this.#memoMax >> 1) {
      // Refresh recency: Map iteration order is insertion order, so the first key is the LRU one.
      this.#memo.delete(token)
      grant.seq = ++this.#seq
      this.#memo.set(token, grant)
    }
    const nowMs = this.#now()
    if (nowMs >= grant.expMs) {
      this.#memo.delete(token)
      throw new VcdnError('ERR_TOKEN_EXPIRED')
    }
    if (path !== grant.okPath) {
      if (typeof path !== 'string' || !path.startsWith(grant.acl) || !isValidPath(path)) {
        throw new VcdnError('ERR_TOKEN_SCOPE')
      }
      grant.okPath = path
    }
    if (grant.ip !== undefined) {
      const clientIp = typeof client === 'string' ? client : client.remoteAddress
      if (grant.ip !== clientIp && grant.ip !== normaliseIp(String(clientIp))) throw new VcdnError('ERR_TOKEN_IP')
    }
  }

  #verifySignature(token: string): Grant {
    const { payloadB64, signature, payload } = parseToken(token)
    const key = this.#keys.get(payload.kid)
    if (key === undefined) throw new VcdnError('ERR_TOKEN_KEY', `kid ${payload.kid}`)
    // Constant time (both sides are 43 ASCII chars: parseToken checked the length), so the
    // comparison leaks nothing about how many leading characters of a forgery were right.
    // Comparing the base64url text rather than decoded bytes also rejects non-canonical encodings.
    const expected = Buffer.from(mac(key, payloadB64), 'latin1')
    const given = Buffer.from(signature, 'latin1')
    if (expected.length !== given.length || !timingSafeEqual(expected, given))
      throw new VcdnError('ERR_TOKEN_SIGNATURE')
    const grant: Grant = { expMs: payload.exp * 1000, acl: payload.acl, ip: payload.ip, seq: 0, okPath: null }
    if (this.#memoMax > 0 && grant.expMs > this.#now()) {
      if (this.#memo.size >= this.#memoMax) {
        const oldest = this.#memo.keys().next()
        if (oldest.done !== true) this.#memo.delete(oldest.value)
      }
      grant.seq = ++this.#seq
      this.#memo.set(token, grant)
    }
    return grant
  }
}
