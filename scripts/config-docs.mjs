#!/usr/bin/env node
// Writes docs/config.md from the tiers' config tables, through the built reference renderer (run
// after `tsc`). `--check` writes nothing and exits 1 when docs/config.md differs from the tables.
import { readFileSync, writeFileSync } from 'node:fs'
const { configReference } = await import('../dist/cli/config-docs.js')
const path = new URL('../docs/config.md', import.meta.url)
const text = await configReference()
if (process.argv.includes('--check')) {
  let current = ''
  try {
    current = readFileSync(path, 'utf8')
  } catch {
    // a missing file differs
  }
  if (current !== text) {
    process.stderr.write('docs/config.md differs from the config tables: run node scripts/config-docs.mjs\n')
    process.exit(1)
  }
} else writeFileSync(path, text)
