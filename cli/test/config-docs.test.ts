// The config reference agrees with the tiers' config tables: docs/config.md is exactly what they
// render (regenerate with `node scripts/config-docs.mjs` after tsc), and `vcdn <tier> --help`, run
// as the built command, prints every key of that tier with its type, default and doc.
import t from 'tap'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, VCDN_BIN } from '../../shared/testing/index.js'
import { configReference, tierHelp, tierKeys, TIERS } from '../config-docs.js'

interface Run {
  code: number
  stdout: string
  stderr: string
}

function vcdn(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    // The tiers' config must not leak in from the environment running the tests.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VCDN_')))
    execFile(process.execPath, [VCDN_BIN, ...args], { timeout: 60_000, env }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

t.test('docs/config.md is what the config tables render (regenerate: node scripts/config-docs.mjs)', async (t) => {
  const docs = readFileSync(join(ROOT, 'docs', 'config.md'), 'utf8')
  t.equal(docs, await configReference(), 'docs/config.md and the config tables agree')
})

t.test('docs/config.md has a row for every key of every tier, with its environment variable', async (t) => {
  const docs = readFileSync(join(ROOT, 'docs', 'config.md'), 'utf8')
  for (const tier of TIERS) {
    const section = docs.split(`\n## ${tier}\n`)[1]?.split('\n## ')[0] ?? ''
    t.not(section, '', `${tier} has a section`)
    for (const key of await tierKeys(tier)) {
      const row = section.split('\n').find((line) => line.startsWith(`| \`${key.path}\` |`))
      t.ok(row, `${tier}: ${key.path} has a row`)
      if (key.env !== undefined) t.match(row ?? '', `\`${key.env}\``, `${tier}: ${key.path} names ${key.env}`)
    }
  }
})

t.test('vcdn <tier> --help prints each config key with its type, default and doc, and exits 0', async (t) => {
  for (const tier of TIERS) {
    const r = await vcdn([tier, '--help'])
    t.equal(r.code, 0, `${tier}: exit 0`)
    t.equal(r.stderr, '', `${tier}: nothing on stderr`)
    t.notMatch(r.stdout, /"msg":"listening"/, `${tier}: the tier does not start`)
    t.equal(r.stdout, await tierHelp(tier), `${tier}: the rendered reference`)
    t.match(r.stdout, new RegExp(`^usage: vcdn ${tier} --config`), tier)
    for (const key of await tierKeys(tier)) {
      const at = r.stdout.indexOf(`\n  ${key.path}  (${key.type}`)
      t.ok(at >= 0, `${tier}: ${key.path} and its type`)
      const entry = r.stdout.slice(at, r.stdout.indexOf('\n', r.stdout.indexOf('\n', at + 1) + 1))
      t.match(entry, key.isRequired ? 'required' : `default ${key.default ?? 'unset'}`, `${tier}: ${key.path} default`)
      t.match(entry, key.doc, `${tier}: ${key.path} doc`)
    }
  }
  const edge = await vcdn(['edge', '-h'])
  t.equal(edge.code, 0)
  t.match(
    edge.stdout,
    /\n {2}cache\.maxBytes {2}\(integer, bytes; default 10737418240 \(10 GiB\); ≥ 1048576 \(1 MiB\); env VCDN_CACHE_MAX_BYTES\)\n {6}disk cache budget\n/,
  )
  t.match(edge.stdout, /\n {2}tierSecret {2}\(string, secret, ≥ 32 bytes; required; env VCDN_TIER_SECRET\)\n/)
})
