// A node registers itself (docs/architecture.md §7.4): at start and then every heartbeat, an edge or
// a shield posts its id, tier and admin URL to the origin's `POST /v1/nodes` (tier secret), so the
// origin's purges and prewarms reach it without an operator listing it. Each call also says which
// purge generation the node applied last; the origin answers with the purges it missed while it was
// away (or that it is too far behind: then it purges everything), which the node applies in order
// before it remembers the new generation in its cache directory — the cache and the generation it
// reflects live and die together.
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { CacheEngine, PurgeMode, PurgeTarget } from '../cache/index.js'
import { TIER_SECRET_HEADER } from '../config/index.js'
import { CONTENT_ROOT } from '../namespace/index.js'
import type { Logger } from '../log/index.js'

const STATE_FILE = 'purge-generation.json'
const REQUEST_TIMEOUT_MS = 10_000

export interface RegistrationOptions {
  /** The origin's base URL (its control API). */
  originUrl: string
  id: string
  tier: 'edge' | 'shield'
  adminUrl: string
  tierSecret: string
  heartbeatMs: number
  /** The cache directory: the applied generation is kept beside the index. */
  cacheDir: string
  engine: CacheEngine
  log: Logger
}

interface RegisterAnswer {
  purgeSeq: number
  purges: { seq: number; target: PurgeTarget; mode: PurgeMode }[]
  isComplete: boolean
}

function isAnswer(x: unknown): x is RegisterAnswer {
  const a = x as Partial<RegisterAnswer> | null
  return typeof a?.purgeSeq === 'number' && Array.isArray(a.purges) && typeof a.isComplete === 'boolean'
}

function isTarget(t: unknown): t is PurgeTarget {
  const x = t as { key?: unknown; prefix?: unknown } | null
  return (
    (typeof x?.prefix === 'string' && x.prefix.startsWith('/')) || (typeof x?.key === 'string' && x.key.startsWith('/'))
  )
}

export class Registration {
  readonly #o: RegistrationOptions
  /** The last purge generation applied; null until the origin first answered (a new cache). */
  #seq: number | null
  #timer: NodeJS.Timeout | null = null
  #beat: Promise<boolean> | null = null
  #isClosed = false
  #isRegistered = false

  constructor(opts: RegistrationOptions) {
    this.#o = opts
    this.#seq = this.#readSeq()
  }

  /** Whether the origin answered at least once. */
  get isRegistered(): boolean {
    return this.#isRegistered
  }

  get seq(): number | null {
    return this.#seq
  }

  /** Register now, then heartbeat; failures are logged and retried at the next beat. */
  start(): Promise<boolean> {
    this.#timer = setInterval(() => void this.beat(), this.#o.heartbeatMs)
    this.#timer.unref()
    return this.beat()
  }

  /** One registration call (not two at once); resolves whether the origin answered. */
  beat(): Promise<boolean> {
    this.#beat ??= this.#register().finally(() => {
      this.#beat = null
    })
    return this.#beat
  }

  /** A registration call that starts after any in flight: it carries the generation as it is now. */
  async beatNow(): Promise<boolean> {
    await this.#beat
    return this.beat()
  }

  /** A purge the origin pushed live (HTTP or a control event): the generation advances only without a gap. */
  onLivePurge(seq: number): void {
    if (this.#seq !== null && seq === this.#seq + 1) this.#writeSeq(seq)
  }

  async close(): Promise<void> {
    this.#isClosed = true
    if (this.#timer !== null) clearInterval(this.#timer)
    await this.#beat
  }

  async #register(): Promise<boolean> {
    const o = this.#o
    let answer: unknown
    try {
      const res = await fetch(`${o.originUrl.replace(/\/+$/, '')}/v1/nodes`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [TIER_SECRET_HEADER]: o.tierSecret },
        body: JSON.stringify({ id: o.id, tier: o.tier, adminUrl: o.adminUrl, lastPurgeSeq: this.#seq }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      })
      const text = await res.text()
      if (!res.ok) {
        o.log.warn({ status: res.status, body: text.slice(0, 200) }, 'registration with the origin refused')
        return false
      }
      answer = JSON.parse(text) as unknown
    } catch (err) {
      o.log.warn({ err, originUrl: o.originUrl }, 'registration with the origin failed; retrying at the next heartbeat')
      return false
    }
    if (!isAnswer(answer)) {
      o.log.warn('registration answer is not understood')
      return false
    }
    if (this.#isClosed) return false
    await this.#catchUp(answer)
    this.#isRegistered = true
    return true
  }

  /** Apply what was missed, in order; then remember the origin's generation. */
  async #catchUp(answer: RegisterAnswer): Promise<void> {
    const { engine, log } = this.#o
    if (this.#seq === null) {
      // A cache that never registered holds nothing an earlier purge could have meant.
      this.#writeSeq(answer.purgeSeq)
      return
    }
    // Too far behind for the origin's log, or an origin whose log started again: purge it all.
    if (!answer.isComplete || answer.purgeSeq < this.#seq) {
      const r = await engine.purge({ prefix: CONTENT_ROOT }, 'hard')
      log.warn(
        { from: this.#seq, to: answer.purgeSeq, removed: r.removed },
        "missed purges are gone from the origin's log: purged all content",
      )
      this.#writeSeq(answer.purgeSeq)
      return
    }
    for (const p of answer.purges) {
      if (!isTarget(p.target) || (p.mode !== 'hard' && p.mode !== 'soft')) continue
      const r = await engine.purge(p.target, p.mode)
      log.info({ ...p.target, mode: p.mode, seq: p.seq, removed: r.removed }, 'applied a purge missed while away')
    }
    this.#writeSeq(Math.max(answer.purgeSeq, this.#seq))
  }

  #readSeq(): number | null {
    try {
      const parsed = JSON.parse(readFileSync(join(this.#o.cacheDir, STATE_FILE), 'utf8')) as { seq?: unknown }
      return typeof parsed.seq === 'number' && Number.isSafeInteger(parsed.seq) ? parsed.seq : null
    } catch {
      return null
    }
  }

  #writeSeq(seq: number): void {
    this.#seq = seq
    const file = join(this.#o.cacheDir, STATE_FILE)
    try {
      writeFileSync(`${file}.tmp`, JSON.stringify({ seq }))
      renameSync(`${file}.tmp`, file)
    } catch (err) {
      this.#o.log.error({ err }, 'could not keep the purge generation; a restart replays from the previous one')
    }
  }
}
