#!/usr/bin/env node
// Regenerates the table and the reserved list in shared/errors/README.md from the built registry
// (run after `tsc`, then Prettier).
import { readFileSync, writeFileSync } from 'node:fs'
const { ERRORS, RESERVED_CODES } = await import('../dist/shared/errors/index.js')
const path = new URL('../shared/errors/README.md', import.meta.url)
const text = readFileSync(path, 'utf8')
const rows = Object.entries(ERRORS).map(
  ([code, { status, message }]) => `| \`${code}\` | ${status} | ${message.replace(/\|/g, '\\|')} |`,
)
const table = ['| code | status | meaning |', '|---|---|---|', ...rows].join('\n')
const reserved = Object.entries(RESERVED_CODES)
  .map(([code, why]) => `- \`${code}\`: ${why}`)
  .join('\n')
writeFileSync(
  path,
  text
    .replace(/<!-- table -->[\s\S]*<!-- \/table -->/, `<!-- table -->\n${table}\n<!-- /table -->`)
    .replace(/<!-- reserved -->[\s\S]*<!-- \/reserved -->/, `<!-- reserved -->\n${reserved}\n<!-- /reserved -->`),
)
