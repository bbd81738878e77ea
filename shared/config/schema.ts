// The shape of a tier's config table (name → type, default, bounds, unit, doc) and the rule that
// names each key's environment variable. The loader (index.ts) and the reference (reference.ts)
// both read tables through this file.

/** Shortest secret accepted: 32 bytes, the size of an HMAC-SHA256 key (RFC 2104 §3: at least L). */
export const MIN_SECRET_BYTES = 32

export type FieldType = 'string' | 'number' | 'integer' | 'boolean' | 'string[]' | 'map' | 'object[]'

export interface Field {
  type: FieldType
  doc: string
  default?: unknown
  isRequired?: boolean
  min?: number
  max?: number
  unit?: string
  /** For 'string': allowed values. */
  oneOf?: readonly string[]
  /**
   * A secret ('string', or every value of a 'map'): at least MIN_SECRET_BYTES bytes and not an
   * example placeholder. An empty string passes only where the default is '' (feature off).
   */
  isSecret?: boolean
}

export interface Schema {
  [key: string]: Field | Schema
}

export function isField(x: Field | Schema): x is Field {
  return typeof (x as Field).type === 'string' && typeof (x as Field).doc === 'string'
}

/** The environment variable the loader reads for `path`: `cache.maxBytes` → `VCDN_CACHE_MAX_BYTES`. */
export function envName(path: string, prefix = 'VCDN_'): string {
  return (
    prefix +
    path
      .replace(/\./g, '_')
      .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
      .toUpperCase()
  )
}
