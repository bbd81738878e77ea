// What `npm pack` ships: the compiled code, READMEs and config examples, and nothing of a demo's
// data, tests or secrets; installed, it gives a working `vcdn` command (package.json "bin").
import t from 'tap'
import { execFile } from 'node:child_process'
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { tempDir } from '../../shared/testing/index.js'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
// npm resolves its own registry and cache settings; nothing here needs the network.
const NPM_FLAGS = ['--offline', '--no-audit', '--no-fund', '--no-update-notifier', '--ignore-scripts']
const TIMEOUT_MS = 180_000

/** Paths an npm package of vcdn may hold (relative to the package root). */
const ALLOWED: readonly RegExp[] = [
  /^package\.json$/,
  /^README\.md$/,
  /^LICENSE$/,
  /^dist\/(cli|shared|origin|shield|edge|transcoder)\/.+\.js$/,
  /^config\/[^/]+\.example\.json$/,
  /^config\/systemd\/vcdn-[a-z]+\.service$/,
  // The operator's Grafana dashboard (config/grafana, tested against a running edge's metrics).
  /^config\/grafana\/[a-z-]+\.json$/,
  /^docs\/.+\.md$/,
  /^(shared|origin|shield|edge|transcoder|cli)\/([a-z-]+\/)?README\.md$/,
]
const FORBIDDEN = /(^|\/)(\.vcdn-demo|test|testing|fixtures|\.tap|node_modules|\.env)(\/|$)|\.(ts|key|pem)$/

t.test(
  'npm pack ships the compiled vcdn and no demo data, tests or secrets; installed, vcdn --help works',
  async (t) => {
    const tmp = tempDir('vcdn-pack-')
    t.teardown(tmp.remove)
    // A copy of the checkout with what an operator's working tree may hold: a demo's data dir
    // (its config carries secrets), an env file, a key.
    const src = join(tmp.dir, 'src')
    cpSync(ROOT, src, {
      recursive: true,
      filter: (from) => {
        const rel = relative(ROOT, from).split(sep)[0]
        // .cache holds downloaded test servers (e.g. the 160 MB SeaweedFS binary), never shipped.
        return rel !== 'node_modules' && rel !== '.git' && rel !== '.cache'
      },
    })
    mkdirSync(join(src, '.vcdn-demo'), { recursive: true })
    writeFileSync(join(src, '.vcdn-demo', 'origin.json'), '{"tierSecret":"demo-secret-demo-secret-demo-secret"}')
    writeFileSync(join(src, '.env'), 'VCDN_TIER_SECRET=x\n')
    writeFileSync(join(src, 'config', 'edge.key'), 'not a key\n')
    const out = join(tmp.dir, 'out')
    mkdirSync(out)
    const packed = await run('npm', ['pack', '--json', '--pack-destination', out, ...NPM_FLAGS], {
      cwd: src,
      timeout: TIMEOUT_MS,
    })
    const [info] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }]
    const files = info.files.map((f) => f.path)
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }
    t.ok(pkg.bin['vcdn'], 'package.json names a vcdn bin')
    t.ok(files.includes(pkg.bin['vcdn']!), `the bin ${pkg.bin['vcdn']} is in the pack`)
    for (const want of ['README.md', 'config/edge.example.json', 'config/origin.example.json', 'dist/edge/src/main.js'])
      t.ok(files.includes(want), `${want} is in the pack`)
    t.same(
      files.filter((f) => FORBIDDEN.test(f)),
      [],
      'no demo data, tests, test helpers, sources or secrets',
    )
    t.same(
      files.filter((f) => !ALLOWED.some((re) => re.test(f))),
      [],
      'only compiled code, READMEs, docs, config examples and the dashboard',
    )

    // Install the tarball the way an operator would. The registry is out of reach here, so the
    // dependencies come from the checkout's node_modules: the extracted package gets a link to
    // them and is installed globally into a temp prefix, which links its bin like any install.
    const pkgDir = join(tmp.dir, 'extract')
    mkdirSync(pkgDir)
    await run('tar', ['-xzf', join(out, info.filename), '-C', pkgDir], { timeout: TIMEOUT_MS })
    symlinkSync(join(ROOT, 'node_modules'), join(pkgDir, 'package', 'node_modules'))
    const prefix = join(tmp.dir, 'prefix')
    await run('npm', ['install', '--global', '--prefix', prefix, ...NPM_FLAGS, join(pkgDir, 'package')], {
      cwd: tmp.dir,
      timeout: TIMEOUT_MS,
    })
    const vcdn = join(prefix, 'bin', 'vcdn')
    const help = await run(vcdn, ['--help'], { timeout: TIMEOUT_MS })
    t.match(help.stdout, /^usage: vcdn <command>/, 'vcdn --help prints the usage')
    t.match(help.stdout, /sign\s+--config/)

    // A command that runs packed code beyond the CLI file (shared/token).
    const cfg = join(tmp.dir, 'edge.json')
    writeFileSync(cfg, JSON.stringify({ signingKeys: { k1: 'k'.repeat(32) }, activeKey: 'k1' }))
    const signed = await run(vcdn, ['sign', '--config', cfg, '--prefix', '/v/abc123/'], { timeout: TIMEOUT_MS })
    t.match(signed.stdout, /^\/t\/[A-Za-z0-9._~-]+\/v\/abc123\/master\.m3u8\n$/, 'the installed vcdn signs a path')
  },
)
