#!/usr/bin/env node
// Regenerates the table in shared/errors/README.md from the built registry (run after `tsc`).
import { readFileSync, writeFileSync } from 'node:fs'
const { ERRORS } = await import('../dist/shared/errors/index.js')
const path = new URL('../shared/errors/README.md', import.meta.url)
const text = readFileSync(path, 'utf8')
const rows = Object.entries(ERRORS).map(
  ([code, { status, message }]) => `| \`${code}\` | ${status} | ${message.replace(/\|/g, '\\|')} |`,
)
const table = ['| code | status | meaning |', '|---|---|---|', ...rows].join('\n')
writeFileSync(path, text.replace(/<!-- table -->[\s\S]*<!-- \/table -->/, `<!-- table -->\n${table}\n<!-- /table -->`))
