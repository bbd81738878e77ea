#!/usr/bin/env node
// Runs every test file with node-tap and ends with the closing line CI reads:
// "N passed, N failed" (N = named tests, i.e. the first level of subtests in each file; a file
// that crashes outside its subtests counts as one failure). Coverage is on (package.json "tap":
// per-file map scripts/coverage-map.mjs, no failing threshold): its table is printed before the
// closing line.
import { spawn } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

const roots = ['shared', 'origin', 'shield', 'edge', 'transcoder', 'bench', 'cli']
const only = process.argv.slice(2)
function find(dir, out) {
  let entries
  try {
    entries = readdirSync(dir)
  } catch {
    return out
  }
  for (const name of entries) {
    if (name === 'node_modules' || name === 'dist') continue
    const p = join(dir, name)
    if (statSync(p).isDirectory()) find(p, out)
    else if (name.endsWith('.test.ts')) out.push(p)
  }
  return out
}
const files = only.length > 0 ? only : roots.flatMap((r) => find(r, [])).sort()
const tap = spawn(join('node_modules', '.bin', 'tap'), ['-R', 'tap', '--timeout=300', ...files], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, TAP_COLOR: '0' },
})
let passed = 0
let failed = 0
let buf = ''
const fileFailed = new Map()
let currentFileFailures = 0
tap.stdout.on('data', (chunk) => {
  process.stdout.write(chunk)
  buf += chunk.toString()
  let nl
  while ((nl = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, nl)
    buf = buf.slice(nl + 1)
    if (/^    ok \d+/.test(line)) passed++
    else if (/^    not ok \d+/.test(line)) {
      failed++
      currentFileFailures++
    } else if (/^(not )?ok \d+ - /.test(line)) {
      const isFileOk = line.startsWith('ok')
      if (!isFileOk && currentFileFailures === 0) failed++
      fileFailed.set(line, !isFileOk)
      currentFileFailures = 0
    }
  }
})
// 'close', not 'exit': the closing line comes after everything tap printed (the coverage table last).
tap.on('close', (code) => {
  if (code !== 0 && failed === 0) failed = 1 // the runner itself failed
  console.log(`${passed} passed, ${failed} failed`)
  process.exit(code === 0 && failed === 0 ? 0 : 1)
})
