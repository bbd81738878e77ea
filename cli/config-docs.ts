// The config reference of every tier, rendered from the tiers' own tables (each main.ts exports its
// `configSchema`): docs/config.md (`node scripts/config-docs.mjs` writes it; a test fails when the
// file and the tables drift) and `vcdn <tier> --help`. One renderer (shared/config) for both.
import { configKeys, renderKeyHelp, renderKeyTable, type KeyDoc, type Schema } from '../shared/config/index.js'

export const TIERS = ['edge', 'shield', 'origin', 'transcoder'] as const
export type Tier = (typeof TIERS)[number]

export function isTier(name: string | undefined): name is Tier {
  return (TIERS as readonly (string | undefined)[]).includes(name)
}

// Imported lazily: `vcdn edge --help` loads the edge only.
const SCHEMAS: Record<Tier, () => Promise<Schema>> = {
  edge: async () => (await import('../edge/src/main.js')).configSchema,
  shield: async () => (await import('../shield/src/main.js')).configSchema,
  origin: async () => (await import('../origin/src/main.js')).configSchema,
  transcoder: async () => (await import('../transcoder/src/main.js')).configSchema,
}

const SUMMARY: Record<Tier, string> = {
  edge: 'PoP cache: checks playback tokens, picks a shield per object by rendezvous hashing.',
  shield: 'Mid-tier cache in front of the origin(s); serves edges only.',
  origin: 'Control API, tus uploads, metadata, job queue, content server for shields.',
  transcoder: 'Claims jobs from the origin, runs ffprobe/ffmpeg, uploads the renditions.',
}

// Keys a tier loads beside the shared table: origin/src/config.ts takes `nodes` out of the file
// (the table has no list-of-objects type) and validates it itself; no environment variable.
const EXTRA_KEYS: Partial<Record<Tier, readonly KeyDoc[]>> = {
  origin: [
    {
      path: 'nodes',
      type: '{id, tier, adminUrl}[]',
      isRequired: false,
      isSecret: false,
      default: '[]',
      doc: 'shields and edges whose admin listener receives purges, e.g. [{"id":"edge-1","tier":"edge","adminUrl":"http://10.0.0.5:9101"}] (tier: shield or edge); nodes may also register with POST /v1/nodes',
    },
  ],
}

/** Every config key of `tier`, in the order of its table. */
export async function tierKeys(tier: Tier): Promise<KeyDoc[]> {
  return [...configKeys(await SCHEMAS[tier]()), ...(EXTRA_KEYS[tier] ?? [])]
}

/** What `vcdn <tier> --help` prints. */
export async function tierHelp(tier: Tier): Promise<string> {
  return [
    `usage: vcdn ${tier} --config ${tier}.json`,
    `  ${SUMMARY[tier]}`,
    '',
    'config keys (defaults < file < environment; docs/config.md):',
    ...renderKeyHelp(await tierKeys(tier)),
    '',
  ].join('\n')
}

/** docs/config.md. */
export async function configReference(): Promise<string> {
  const sections: string[] = []
  for (const tier of TIERS) {
    sections.push(`## ${tier}`, '', SUMMARY[tier], '', renderKeyTable(await tierKeys(tier)), '')
  }
  return [
    '# Configuration reference',
    '',
    '<!-- Generated from the tiers’ config tables: do not edit by hand. -->',
    '',
    'Generated from the config tables in `<tier>/src/config.ts` (and the shared parts in `shared/`);',
    'regenerate with `node_modules/.bin/tsc -p tsconfig.json && node scripts/config-docs.mjs`.',
    '`cli/test/config-docs.test.ts` fails when this file and the tables drift. `vcdn <tier> --help`',
    'prints the same keys.',
    '',
    'Each tier reads one JSON file (`vcdn <tier> --config <tier>.json`). Precedence: defaults < file <',
    'environment. The environment variable of a key is `VCDN_` and its path in upper snake case',
    '(`cache.maxBytes` → `VCDN_CACHE_MAX_BYTES`); booleans are `true`/`false`/`1`/`0`, lists are',
    'comma-separated, maps are a JSON object. The config is validated once at start: unknown keys are',
    'refused, every problem is reported at once (`ERR_CONFIG_INVALID`), and the result is frozen.',
    'Secrets must be at least 32 bytes and not an example placeholder. Example files: `config/`.',
    '',
    'Columns: _default_ is JSON (`required`: no default, the tier does not start without it;',
    '`unset`: off unless given); _bounds_ are inclusive (for lists and maps they count entries).',
    '',
    ...sections,
  ].join('\n')
}
