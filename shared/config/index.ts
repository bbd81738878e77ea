// Table-driven configuration (docs/style.md "Config"): each tier declares one table of
// name → type, default, bounds, unit and doc. Precedence: defaults < file < environment. The result
// is validated once, every problem is reported at once, unknown keys are rejected, and it is frozen.
// This is the only module that reads process.env.
import { readFileSync } from 'node:fs'
import { VcdnError } from '../errors/index.js'
import { envName as envNameOf, isField, MIN_SECRET_BYTES, type Field, type Schema } from './schema.js'

export { envName, MIN_SECRET_BYTES, type Field, type FieldType, type Schema } from './schema.js'
export {
  boundsText,
  configKeys,
  defaultText,
  renderKeyHelp,
  renderKeyTable,
  typeText,
  unitText,
  type KeyDoc,
} from './reference.js'

/**
 * The placeholder secrets of the example configs in config/ (a test keeps this list and those
 * files in step): a node started from an example unchanged must not run with a published secret.
 */
export const EXAMPLE_SECRET_PLACEHOLDERS: readonly string[] = [
  'change-me: openssl rand -base64 48 (the same on origin, shields and edges)',
  'change-me: openssl rand -base64 48 (the same on origin and edges)',
  'change-me: openssl rand -base64 48',
  '<a JWT from: vcdn token --config origin.json --sub transcoder-1 --role worker --ttl 31536000>',
]

// Anything that reads as a placeholder, e.g. an older example's "change-me-jwt-secret".
const PLACEHOLDER_RE = /change[-_ ]?me|replace[-_ ]?me|^<.*>$/i

/** Why `value` cannot be the secret at `at`, or null. Never quotes the value. */
export function secretProblem(value: string, at: string): string | null {
  if (EXAMPLE_SECRET_PLACEHOLDERS.includes(value) || PLACEHOLDER_RE.test(value)) {
    return `${at} is an example placeholder: set a secret of your own (openssl rand -base64 48)`
  }
  if (Buffer.byteLength(value, 'utf8') < MIN_SECRET_BYTES) {
    return `${at} must be at least ${MIN_SECRET_BYTES} bytes (openssl rand -base64 48)`
  }
  return null
}

export interface LoadOptions {
  /** Path of the JSON file given with --config, if any. */
  file?: string | undefined
  /** Object overrides applied after the file (tests, the demo). */
  overrides?: Record<string, unknown>
  /** Environment (defaults to process.env): VCDN_<PATH_IN_UPPER_SNAKE>, e.g. VCDN_LISTEN_PORT. */
  env?: NodeJS.ProcessEnv
  envPrefix?: string
}

/** Load, merge, validate and freeze a config for `schema`. Throws ERR_CONFIG_INVALID listing every problem. */
export function loadConfig<T>(schema: Schema, opts: LoadOptions = {}): T {
  const problems: string[] = []
  let fromFile: unknown = {}
  if (opts.file !== undefined) {
    try {
      fromFile = JSON.parse(readFileSync(opts.file, 'utf8'))
    } catch (err) {
      throw new VcdnError('ERR_CONFIG_INVALID', `cannot read ${opts.file}: ${(err as Error).message}`)
    }
  }
  const env = opts.env ?? process.env
  const prefix = opts.envPrefix ?? 'VCDN_'
  const merged = mergeDeep(fromFile, opts.overrides ?? {})
  const out = build(schema, merged, '', env, prefix, problems)
  if (problems.length > 0) throw new VcdnError('ERR_CONFIG_INVALID', problems.join('; '))
  return deepFreeze(out) as T
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

function mergeDeep(a: unknown, b: unknown): unknown {
  if (!isPlainObject(a) || !isPlainObject(b)) return b === undefined ? a : b
  const out: Record<string, unknown> = { ...a }
  for (const [k, v] of Object.entries(b)) out[k] = k in a ? mergeDeep(a[k], v) : v
  return out
}

function build(
  schema: Schema,
  input: unknown,
  path: string,
  env: NodeJS.ProcessEnv,
  prefix: string,
  problems: string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const given = isPlainObject(input) ? input : {}
  if (input !== undefined && !isPlainObject(input)) problems.push(`${path || '(root)'} must be an object`)
  for (const key of Object.keys(given)) {
    if (!(key in schema)) problems.push(`${path}${key} is not a known key`)
  }
  for (const [key, spec] of Object.entries(schema)) {
    const at = `${path}${key}`
    if (!isField(spec)) {
      out[key] = build(spec, given[key], `${at}.`, env, prefix, problems)
      continue
    }
    const envName = envNameOf(at, prefix)
    let value: unknown = given[key]
    const fromEnv = env[envName]
    if (fromEnv !== undefined) value = parseEnv(spec, fromEnv, envName, problems)
    if (value === undefined) {
      if (spec.isRequired) problems.push(`${at} is required (${spec.doc})`)
      value = spec.default
    }
    if (value !== undefined) checkType(spec, value, at, problems)
    if (spec.isSecret === true && value !== undefined) checkSecret(spec, value, at, problems)
    out[key] = value
  }
  return out
}

function parseEnv(spec: Field, raw: string, name: string, problems: string[]): unknown {
  switch (spec.type) {
    case 'string':
      return raw
    case 'number':
    case 'integer':
      return raw.trim() === '' ? NaN : Number(raw)
    case 'boolean':
      if (raw === 'true' || raw === '1') return true
      if (raw === 'false' || raw === '0') return false
      problems.push(`${name} must be true or false`)
      return undefined
    case 'string[]':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
    case 'object[]':
      try {
        return JSON.parse(raw) as unknown
      } catch {
        problems.push(`${name} must be a JSON array`)
        return undefined
      }
    case 'map':
      try {
        return JSON.parse(raw) as unknown
      } catch {
        problems.push(`${name} must be a JSON object`)
        return undefined
      }
  }
}

function checkType(spec: Field, value: unknown, at: string, problems: string[]): void {
  switch (spec.type) {
    case 'string':
      if (typeof value !== 'string') problems.push(`${at} must be a string`)
      else if (spec.oneOf && !spec.oneOf.includes(value)) problems.push(`${at} must be one of ${spec.oneOf.join(', ')}`)
      return
    case 'boolean':
      if (typeof value !== 'boolean') problems.push(`${at} must be a boolean`)
      return
    case 'number':
    case 'integer': {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        problems.push(`${at} must be a number`)
        return
      }
      if (spec.type === 'integer' && !Number.isInteger(value)) problems.push(`${at} must be an integer`)
      if (spec.min !== undefined && value < spec.min) problems.push(`${at} must be ≥ ${spec.min}`)
      if (spec.max !== undefined && value > spec.max) problems.push(`${at} must be ≤ ${spec.max}`)
      return
    }
    case 'string[]':
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
        problems.push(`${at} must be an array of strings`)
      } else if (spec.min !== undefined && value.length < spec.min) {
        problems.push(`${at} must have at least ${spec.min} entries`)
      }
      return
    case 'object[]':
      // The entries' own fields are checked by the tier that reads them (e.g. tlsProblems).
      if (!Array.isArray(value) || !value.every(isPlainObject)) problems.push(`${at} must be an array of objects`)
      return
    case 'map':
      if (!isPlainObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
        problems.push(`${at} must be an object of strings`)
      } else if (spec.min !== undefined && Object.keys(value).length < spec.min) {
        problems.push(`${at} must have at least ${spec.min} entries`)
      }
      return
  }
}

function checkSecret(spec: Field, value: unknown, at: string, problems: string[]): void {
  const check = (v: unknown, path: string): void => {
    if (typeof v !== 'string') return // checkType reported it
    if (v === '' && spec.default === '') return // the feature is off
    const problem = secretProblem(v, path)
    if (problem !== null) problems.push(problem)
  }
  if (spec.type === 'map' && isPlainObject(value)) {
    for (const [k, v] of Object.entries(value)) check(v, `${at}.${k}`)
  } else check(value, at)
}

function deepFreeze(o: unknown): unknown {
  if (typeof o === 'object' && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v)
    Object.freeze(o)
  }
  return o
}

/** Fields shared by every tier (docs/architecture.md §10.1). */
export const commonSchema = {
  listen: {
    host: { type: 'string', default: '127.0.0.1', doc: 'public listener address' },
    port: { type: 'integer', default: 0, min: 0, max: 65535, doc: 'public listener port (0 = any free port)' },
  },
  admin: {
    host: { type: 'string', default: '127.0.0.1', doc: 'admin listener address (metrics, health, purge)' },
    port: { type: 'integer', default: 0, min: 0, max: 65535, doc: 'admin listener port (0 = any free port)' },
  },
  tierSecret: {
    type: 'string',
    isRequired: true,
    isSecret: true,
    doc: 'secret shared by origin, shields and edges (x-vcdn-tier header)',
  },
  logLevel: {
    type: 'string',
    default: 'info',
    oneOf: ['fatal', 'error', 'warn', 'info', 'debug', 'silent'],
    doc: 'log level',
  },
  accessLog: { type: 'boolean', default: true, doc: 'one JSON access line per request' },
  drainTimeoutMs: {
    type: 'integer',
    default: 10_000,
    min: 0,
    unit: 'ms',
    doc: 'SIGTERM: how long in-flight requests may finish',
  },
} satisfies Schema

export interface CommonConfig {
  listen: { host: string; port: number }
  admin: { host: string; port: number }
  tierSecret: string
  logLevel: string
  accessLog: boolean
  drainTimeoutMs: number
}

export const TIER_SECRET_HEADER = 'x-vcdn-tier'
