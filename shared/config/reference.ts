// The config reference: a tier's table (index.ts) flattened into one row per key, rendered as the
// markdown of docs/config.md and as the text of `vcdn <tier> --help`. Both come from these rows, so
// the two never say different things; a test keeps docs/config.md equal to what the tables render.
import { envName, isField, MIN_SECRET_BYTES, type Schema } from './schema.js'

/** One key of a tier's config, as the reference shows it. */
export interface KeyDoc {
  /** Dotted path in the JSON file, e.g. `cache.maxBytes`. */
  path: string
  /** A schema type (FieldType), or a shape a tier loads beside the table (origin's `nodes`). */
  type: string
  /** Allowed values of a 'string'. */
  oneOf?: readonly string[]
  isRequired: boolean
  isSecret: boolean
  /** The default as JSON; undefined when the key has none (required, or unset by default). */
  default?: string
  min?: number
  max?: number
  unit?: string
  doc: string
  /** The environment variable that overrides it; undefined when the loader reads none. */
  env?: string
}

/** Every key of `schema`, depth first in declaration order (the order of the table). */
export function configKeys(schema: Schema, opts: { envPrefix?: string } = {}, path = ''): KeyDoc[] {
  const keys: KeyDoc[] = []
  for (const [key, spec] of Object.entries(schema)) {
    const at = `${path}${key}`
    if (!isField(spec)) {
      keys.push(...configKeys(spec, opts, `${at}.`))
      continue
    }
    keys.push({
      path: at,
      type: spec.type,
      ...(spec.oneOf !== undefined ? { oneOf: spec.oneOf } : {}),
      isRequired: spec.isRequired === true,
      isSecret: spec.isSecret === true,
      ...(spec.default !== undefined ? { default: JSON.stringify(spec.default) } : {}),
      ...(spec.min !== undefined ? { min: spec.min } : {}),
      ...(spec.max !== undefined ? { max: spec.max } : {}),
      ...(spec.unit !== undefined ? { unit: spec.unit } : {}),
      doc: spec.doc,
      env: envName(at, opts.envPrefix),
    })
  }
  return keys
}

const BINARY_UNITS: readonly [number, string][] = [
  [1024 ** 4, 'TiB'],
  [1024 ** 3, 'GiB'],
  [1024 ** 2, 'MiB'],
  [1024, 'KiB'],
]

/** `10737418240` → `10 GiB`, for byte counts that are whole binary multiples; else null. */
function binaryBytes(n: number): string | null {
  for (const [size, name] of BINARY_UNITS) if (n >= size && n % size === 0) return `${n / size} ${name}`
  return null
}

function isCountedType(type: string): boolean {
  return type === 'string[]' || type === 'map'
}

/** `string (keep | ignore | list)`, `integer`, … */
export function typeText(k: KeyDoc): string {
  return k.oneOf !== undefined ? `${k.type} (${k.oneOf.join(' | ')})` : k.type
}

/** `n`, with `(10 GiB)` when it counts bytes in a whole binary multiple. */
function amount(n: number, unit: string | undefined): string {
  const human = unit === 'bytes' && Number.isInteger(n) ? binaryBytes(n) : null
  return human === null ? String(n) : `${n} (${human})`
}

/** `required`, `unset`, or the default as JSON. */
export function defaultText(k: KeyDoc): string {
  if (k.isRequired) return 'required'
  return k.default ?? 'unset'
}

/** `= 10 GiB` beside a default that counts bytes in a whole binary multiple; else ''. */
function defaultHint(k: KeyDoc): string {
  const n = Number(k.default)
  const human = k.unit === 'bytes' && !k.isRequired && Number.isInteger(n) ? binaryBytes(n) : null
  return human === null ? '' : ` (${human})`
}

/** `0–65535`, `≥ 1`, `≤ 16`; for lists and maps the bound counts entries. */
export function boundsText(k: KeyDoc): string {
  const entries = isCountedType(k.type) ? ' entries' : ''
  const min = k.min !== undefined ? amount(k.min, k.unit) : undefined
  const max = k.max !== undefined ? amount(k.max, k.unit) : undefined
  if (min !== undefined && max !== undefined) return `${min}–${max}${entries}`
  if (min !== undefined) return `≥ ${min}${entries}`
  if (max !== undefined) return `≤ ${max}${entries}`
  return ''
}

/** The unit, or what a secret must be. */
export function unitText(k: KeyDoc): string {
  if (k.isSecret) return `secret, ≥ ${MIN_SECRET_BYTES} bytes`
  return k.unit ?? ''
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

function code(text: string): string {
  return text === '' ? '' : `\`${text}\``
}

/** A markdown table: key, type, default, bounds, unit, environment variable, doc. */
export function renderKeyTable(keys: readonly KeyDoc[]): string {
  const rows = keys.map((k) =>
    [
      code(k.path),
      typeText(k),
      k.isRequired || k.default === undefined ? defaultText(k) : `${code(defaultText(k))}${defaultHint(k)}`,
      boundsText(k),
      unitText(k),
      k.env === undefined ? '—' : code(k.env),
      k.doc,
    ]
      .map(cell)
      .join(' | '),
  )
  return [
    '| key | type | default | bounds | unit | environment | doc |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r} |`),
  ].join('\n')
}

/** `vcdn <tier> --help`: one entry per key, its facts on the first line and its doc indented below. */
export function renderKeyHelp(keys: readonly KeyDoc[]): string[] {
  const lines: string[] = []
  for (const k of keys) {
    const unit = unitText(k)
    const facts = [
      unit === '' ? typeText(k) : `${typeText(k)}, ${unit}`,
      k.isRequired ? 'required' : `default ${defaultText(k)}${defaultHint(k)}`,
      boundsText(k),
      k.env === undefined ? '' : `env ${k.env}`,
    ].filter((s) => s !== '')
    lines.push(`  ${k.path}  (${facts.join('; ')})`, `      ${k.doc}`)
  }
  return lines
}
