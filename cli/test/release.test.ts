// The install package (`make release`, scripts/release/build.sh): the tarball holds an allow-listed
// tree and nothing of a demo, a test or a secret; unpacked into an empty directory, outside the
// checkout and with no Node on PATH, it runs origin, shield and edge on its own Node and native
// modules; the .deb unpacked with dpkg-deb -x (not installed system-wide) does the same; install.sh
// lays it out below a root; each systemd unit scores "OK" or better in systemd-analyze security.
import t, { type Test } from 'tap'
import { execFile, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { FsStore } from '../../shared/store/index.js'
import { startTier, tempDir, type TierProcess } from '../../shared/testing/index.js'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string
  devDependencies: Record<string, string>
}
const VERSION = PACKAGE.version
/** What only development needs; none of it may ship. */
const devDependencies = Object.keys(PACKAGE.devDependencies)
const NAME = `vcdn-${VERSION}-linux-x64`
const DEB_NAME = `vcdn_${VERSION}_amd64.deb`
// Building copies and compresses ~150 MB: minutes on a busy 2-core machine.
const BUILD_TIMEOUT_MS = 600_000
const STEP_TIMEOUT_MS = 120_000
const SECRET = 'release-test-tier-secret-0123456789abcdef'
const KEYS = { k1: 'release-test-signing-key-0123456789abcdef' }
const DEMO_SECRET = 'demo-secret-planted-in-the-work-tree-0123456789'
const UNITS = ['vcdn-edge.service', 'vcdn-shield.service', 'vcdn-origin.service', 'vcdn-transcoder.service']

// The runner gives each file 300 s; a first build on a busy machine can take most of that. Both
// calls are needed: setTimeout moves this process's own timer, the `# timeout=` comment the runner's.
const FILE_TIMEOUT_MS = BUILD_TIMEOUT_MS + 600_000
t.setTimeout(FILE_TIMEOUT_MS)
t.comment(`timeout=${FILE_TIMEOUT_MS}`)

// Debian package systemd (scripts/install-system.sh installs it); dpkg-deb is in dpkg (essential).
const HAS_ANALYZE = spawnSync('systemd-analyze', ['--version']).error === undefined
const HAS_DPKG_DEB = spawnSync('dpkg-deb', ['--version']).error === undefined

/** Every file (and symlink) below `dir`, relative to it. */
function filesUnder(dir: string, base = dir, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    const s = statSync(p, { throwIfNoEntry: false })
    if (s?.isDirectory() === true && !isSymlink(p)) filesUnder(p, base, out)
    else out.push(relative(base, p))
  }
  return out
}
function isSymlink(p: string): boolean {
  try {
    readlinkSync(p)
    return true
  } catch {
    return false
  }
}

/**
 * A key for what a release is built from (the compiled code, configs, docs, the release scripts,
 * the lockfile, the native builds, this Node): a rerun with the same inputs reuses the last build
 * instead of spending minutes on an identical package.
 */
function inputsKey(): string {
  const h = createHash('sha256').update(process.version).update(process.execPath)
  const roots = [
    'dist',
    'config',
    'docs',
    'scripts/release',
    'package.json',
    'package-lock.json',
    'README.md',
    // the native builds copied into the package
    'node_modules/better-sqlite3/build/Release/better_sqlite3.node',
    'node_modules/node-rdkafka/build/Release/node-librdkafka.node',
  ]
  for (const r of roots) {
    const p = join(ROOT, r)
    const files = statSync(p).isDirectory() ? filesUnder(p).map((f) => join(r, f)) : [r]
    // compiled tests and benchmarks are not shipped: rebuilding them changes no package
    const shipped = files.filter((f) => !/^dist\/(bench\/|.*\/test\/|shared\/testing\/)/.test(f))
    for (const f of shipped.sort()) h.update(f).update(readFileSync(join(ROOT, f)))
  }
  return h.digest('hex').slice(0, 16)
}

/**
 * Builds the release from a copy of the work tree in which an operator left a demo's data (its
 * config holds secrets), an env file and a key, so the allow-list is tested against them. The copy
 * shares the checkout's node_modules (where the native builds come from) through a symlink.
 */
async function buildRelease(): Promise<string> {
  const cacheRoot = join(ROOT, '.cache', 'release-test')
  const out = join(cacheRoot, inputsKey())
  if (existsSync(join(out, `${NAME}.tar.gz`)) && (!HAS_DPKG_DEB || existsSync(join(out, DEB_NAME)))) return out
  rmSync(cacheRoot, { recursive: true, force: true })
  const tmp = tempDir('vcdn-release-src-')
  try {
    const src = join(tmp.dir, 'src')
    cpSync(ROOT, src, {
      recursive: true,
      filter: (from) => !['node_modules', '.git', '.cache', '.tap'].includes(relative(ROOT, from).split(sep)[0]!),
    })
    symlinkSync(join(ROOT, 'node_modules'), join(src, 'node_modules'))
    mkdirSync(join(src, '.vcdn-demo'), { recursive: true })
    writeFileSync(join(src, '.vcdn-demo', 'origin.json'), JSON.stringify({ tierSecret: DEMO_SECRET }))
    writeFileSync(join(src, '.env'), `VCDN_TIER_SECRET=${DEMO_SECRET}\n`)
    writeFileSync(join(src, 'config', 'edge.key'), `${DEMO_SECRET}\n`)
    mkdirSync(join(cacheRoot, 'building'), { recursive: true })
    await run('bash', [join(src, 'scripts', 'release', 'build.sh'), '--out', join(cacheRoot, 'building')], {
      cwd: src,
      timeout: BUILD_TIMEOUT_MS,
      maxBuffer: 16 * 1024 * 1024,
    })
  } finally {
    tmp.remove()
  }
  renameSync(join(cacheRoot, 'building'), out)
  return out
}

/**
 * Starts a tier from an unpacked package: `<pkg>/bin/vcdn <tier> --config <file>`, in `cwd`, with a
 * PATH holding only the three tools the launcher uses (no node, nothing of the checkout). startTier
 * runs `wrap… node vcdn.js <tier> …`; the wrapper drops those two words and execs the package's
 * launcher (same pid), so readiness, logs and teardown are startTier's.
 */
function startFromPackage(
  pkg: string,
  cwd: string,
  pathDir: string,
  tier: string,
  config: Record<string, unknown>,
): Promise<TierProcess> {
  return startTier(tier, config, {
    dir: cwd,
    timeoutMs: 60_000,
    wrap: ['/bin/sh', '-c', 'cd "$1" && shift 3 && exec "$0" "$@"', join(pkg, 'bin', 'vcdn'), cwd],
    env: { PATH: pathDir, NODE_PATH: undefined, NODE_OPTIONS: undefined, HOME: cwd },
  })
}

/** A directory for PATH with only what bin/vcdn (a /bin/sh script) calls. */
function toolsDir(dir: string): string {
  mkdirSync(dir)
  for (const tool of ['dirname', 'readlink', 'cat']) {
    const found = spawnSync('/bin/sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim()
    symlinkSync(found, join(dir, tool))
  }
  return dir
}

t.test(
  'each systemd unit scores "OK" or better in systemd-analyze security',
  { skip: HAS_ANALYZE ? false : 'systemd-analyze is not installed (Debian package systemd)' },
  async (t) => {
    for (const unit of UNITS) {
      const file = join(ROOT, 'config', 'systemd', unit)
      const text = readFileSync(file, 'utf8')
      t.match(text, /^User=vcdn$/m, `${unit} runs as the user vcdn`)
      t.match(text, /^ExecStart=\/opt\/vcdn\/bin\/node \/opt\/vcdn\/dist\/cli\/vcdn\.js [a-z]+ --config /m)
      // --offline: reads the unit file only, no running systemd needed (CI containers have none).
      const r = await run('systemd-analyze', ['security', '--offline=yes', '--no-pager', file], {
        timeout: STEP_TIMEOUT_MS,
      })
      const m = /Overall exposure level for [^:]+: (\d+\.\d) (\w+)/.exec(r.stdout)
      t.ok(m, `${unit}: an overall exposure line`)
      const [score, band] = [Number(m?.[1]), m?.[2]]
      t.comment(`${unit}: ${score} ${band}`)
      // systemd 252's bands: <1.0 SAFE/PERFECT, 1.0-4.9 OK, 5.0-7.4 MEDIUM, 7.5-8.9 EXPOSED, >=9.0 UNSAFE.
      t.ok(score < 5, `${unit}: exposure ${score} is below 5.0`)
      t.ok(['OK', 'SAFE', 'PERFECT'].includes(band ?? ''), `${unit}: band ${band} is OK or better`)
    }
  },
)

t.test('the release package', async (t) => {
  const out = await buildRelease()
  const tarball = join(out, `${NAME}.tar.gz`)
  const deb = join(out, DEB_NAME)
  t.comment(`${tarball}: ${(statSync(tarball).size / 1e6).toFixed(1)} MB`)
  if (HAS_DPKG_DEB) t.comment(`${deb}: ${(statSync(deb).size / 1e6).toFixed(1)} MB`)
  const tmp = tempDir('vcdn-release-')
  t.teardown(tmp.remove)
  const tiers: TierProcess[] = []
  t.teardown(() => Promise.all(tiers.map((p) => p.stop())))

  const listed = (await run('tar', ['-tzf', tarball], { timeout: STEP_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 })).stdout
    .split('\n')
    .filter((l) => l !== '' && !l.endsWith('/'))
  const unpackDir = join(tmp.dir, 'unpacked')
  mkdirSync(unpackDir)
  await run('tar', ['-xzf', tarball, '-C', unpackDir], { timeout: STEP_TIMEOUT_MS })
  const pkg = join(unpackDir, NAME)
  const pathDir = toolsDir(join(tmp.dir, 'path'))
  const work = join(tmp.dir, 'work')
  mkdirSync(work)

  t.test('holds the compiled tiers, their production dependencies and Node, and nothing else', async (t) => {
    t.ok(
      listed.every((f) => f.startsWith(`${NAME}/`)),
      `one top directory ${NAME}/`,
    )
    const rel = listed.map((f) => f.slice(NAME.length + 1))
    for (const want of [
      'bin/node',
      'bin/vcdn',
      'install.sh',
      'VERSION',
      'package.json',
      'README.md',
      'docs/operations.md',
      'dist/cli/vcdn.js',
      'dist/edge/src/main.js',
      'config/edge.example.json',
      'config/grafana/vcdn-dashboard.json',
      'node_modules/better-sqlite3/build/Release/better_sqlite3.node',
      'node_modules/node-rdkafka/build/Release/node-librdkafka.node',
      'node_modules/node-rdkafka/build/deps/librdkafka.so.1',
      `node_modules/uWebSockets.js/binaries/uws_linux_x64_${process.versions.modules}.node`,
      ...UNITS.map((u) => `config/systemd/${u}`),
    ])
      t.ok(rel.includes(want), `${want} is in the tarball`)
    t.same(
      rel.filter((f) =>
        /(^|\/)(test|tests|__tests__|testing|bench|benchmarks?|fixtures|\.tap|\.cache|\.git|\.vcdn-demo)(\/|$)|(^|\/)\.env$|\.(ts|pem|key|map)$/.test(
          f,
        ),
      ),
      [],
      'no tests, test helpers, benchmarks, caches, demo data, keys, sources or maps',
    )
    t.same(
      rel.filter((f) => devDependencies.some((name) => f.startsWith(`node_modules/${name}/`))),
      [],
      'no development dependency',
    )
    t.same(
      rel.filter((f) => f.startsWith('dist/') && !/^dist\/(cli|shared|origin|shield|edge|transcoder)\/.+\.js$/.test(f)),
      [],
      'dist/ holds the compiled tiers only',
    )
    const leaked = filesUnder(pkg).filter((f) => {
      const p = join(pkg, f)
      return !isSymlink(p) && readFileSync(p).includes(DEMO_SECRET)
    })
    t.same(leaked, [], "no file holds the demo's secret left in the work tree")
    t.equal(
      readFileSync(join(pkg, 'config', 'systemd', 'vcdn-edge.service'), 'utf8'),
      readFileSync(join(ROOT, 'config', 'systemd', 'vcdn-edge.service'), 'utf8'),
      'the units are the checked ones',
    )
  })

  t.test('loads its native modules on its own Node, from a directory outside the checkout', async (t) => {
    const probe = [
      "const D = require('better-sqlite3')",
      "const sqlite = new D(':memory:').prepare('select sqlite_version() as v').get().v",
      "const kafka = require('node-rdkafka').librdkafkaVersion",
      "const uws = typeof require('uWebSockets.js').App",
      'console.log(JSON.stringify({ sqlite, kafka, uws, node: process.version, exec: process.execPath }))',
    ].join(';')
    const r = await run(join(pkg, 'bin', 'node'), ['-e', probe], {
      cwd: pkg,
      env: { PATH: pathDir, HOME: work },
      timeout: STEP_TIMEOUT_MS,
    })
    const got = JSON.parse(r.stdout) as { sqlite: string; kafka: string; uws: string; node: string; exec: string }
    t.match(got.sqlite, /^3\.\d+/, 'better-sqlite3 opens a database')
    t.match(got.kafka, /^\d+\.\d+/, 'node-rdkafka loads librdkafka')
    t.equal(got.uws, 'function', 'uWebSockets.js loads')
    t.equal(got.node, process.version, 'the Node the tests ran with')
    t.equal(got.exec, join(pkg, 'bin', 'node'))
    const version = await run(join(pkg, 'bin', 'vcdn'), ['--version'], {
      cwd: work,
      env: { PATH: pathDir },
      timeout: STEP_TIMEOUT_MS,
    })
    t.equal(version.stdout, `vcdn ${VERSION} (node ${process.version})\n`)
  })

  // origin → shield → edge, every one from the unpacked tarball; then an edge from the .deb.
  const store = new FsStore({ dir: join(work, 'store') })
  const segment = Buffer.alloc(200_000, 7)
  for (let i = 0; i < segment.length; i += 4096) segment.writeUInt32BE(i, i)
  await store.put('v/rel1/720p/seg_00001.m4s', segment)
  const origin = await startFromPackage(pkg, work, pathDir, 'origin', {
    tierSecret: SECRET,
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    dataDir: join(work, 'origin'),
    store: { kind: 'fs', dir: join(work, 'store') },
  })
  tiers.push(origin)
  const shield = await startFromPackage(pkg, work, pathDir, 'shield', {
    tierSecret: SECRET,
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: [origin.url],
    cache: { dir: join(work, 'shield'), maxBytes: 64 * 1024 * 1024, memoryMaxBytes: 8 * 1024 * 1024 },
  })
  tiers.push(shield)
  const edgeConfig = (name: string): Record<string, unknown> => ({
    tierSecret: SECRET,
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    shields: [shield.url],
    origin: origin.url,
    signingKeys: KEYS,
    cache: { dir: join(work, name), maxBytes: 64 * 1024 * 1024, memoryMaxBytes: 8 * 1024 * 1024 },
  })
  const edgeFile = join(work, 'edge-sign.json')
  writeFileSync(edgeFile, JSON.stringify(edgeConfig('unused')))

  /** Signs with the package's own `vcdn sign`, then fetches the segment through `edge`. */
  async function playsThrough(t: Test, vcdnBin: string, edge: TierProcess): Promise<void> {
    t.equal(readlinkSync(`/proc/${edge.proc.pid}/exe`), join(dirname(vcdnBin), 'node'), "runs on the package's Node")
    const signed = await run(
      vcdnBin,
      ['sign', '--config', edgeFile, '--prefix', '/v/rel1/', '--path', '/v/rel1/720p/seg_00001.m4s'],
      { cwd: work, env: { PATH: pathDir }, timeout: STEP_TIMEOUT_MS },
    )
    const path = signed.stdout.trim()
    t.match(path, /^\/t\/[A-Za-z0-9._~-]+\/v\/rel1\/720p\/seg_00001\.m4s$/)
    const res = await fetch(edge.url + path)
    t.equal(res.status, 200)
    t.equal(res.headers.get('content-type'), 'video/iso.segment')
    t.ok(Buffer.from(await res.arrayBuffer()).equals(segment), 'the bytes the origin stored')
    const unsigned = await fetch(`${edge.url}/v/rel1/720p/seg_00001.m4s`)
    const body = (await unsigned.json()) as { error?: { code?: string } }
    t.ok(unsigned.status >= 400 && unsigned.status < 500, `unsigned: ${unsigned.status}`)
    t.match(body.error?.code ?? '', /^ERR_TOKEN_/, 'the token check is live')
  }

  t.test('an edge from the unpacked tarball serves a signed segment through its shield and origin', async (t) => {
    const edge = await startFromPackage(pkg, work, pathDir, 'edge', edgeConfig('edge-tarball'))
    tiers.push(edge)
    await playsThrough(t, join(pkg, 'bin', 'vcdn'), edge)
  })

  t.test(
    'the .deb, unpacked with dpkg-deb -x, runs vcdn --version and an edge',
    { skip: HAS_DPKG_DEB ? false : 'dpkg-deb is not installed (Debian package dpkg)' },
    async (t) => {
      const fields = await run('dpkg-deb', ['-f', deb, 'Package', 'Version', 'Architecture', 'Depends'], {
        timeout: STEP_TIMEOUT_MS,
      })
      t.match(fields.stdout, `Package: vcdn\nVersion: ${VERSION}\nArchitecture: amd64\n`)
      t.match(fields.stdout, /Depends: .*libssl3/, 'names the shared libraries librdkafka links')
      const root = join(tmp.dir, 'deb-root')
      mkdirSync(root)
      await run('dpkg-deb', ['-x', deb, root], { timeout: STEP_TIMEOUT_MS })
      t.equal(readlinkSync(join(root, 'usr', 'bin', 'vcdn')), '/opt/vcdn/bin/vcdn', '/usr/bin/vcdn is the command')
      for (const unit of UNITS) t.ok(existsSync(join(root, 'lib', 'systemd', 'system', unit)), `${unit} installed`)
      const control = join(tmp.dir, 'deb-control')
      await run('dpkg-deb', ['-e', deb, control], { timeout: STEP_TIMEOUT_MS })
      for (const s of ['postinst', 'prerm', 'postrm']) {
        const r = spawnSync('/bin/sh', ['-n', join(control, s)])
        t.equal(r.status, 0, `${s} is valid sh`)
      }
      const vcdnBin = join(root, 'opt', 'vcdn', 'bin', 'vcdn')
      const version = await run(vcdnBin, ['--version'], { cwd: work, env: { PATH: pathDir }, timeout: STEP_TIMEOUT_MS })
      t.equal(version.stdout, `vcdn ${VERSION} (node ${process.version})\n`)
      const edge = await startFromPackage(join(root, 'opt', 'vcdn'), work, pathDir, 'edge', edgeConfig('edge-deb'))
      tiers.push(edge)
      await playsThrough(t, vcdnBin, edge)
    },
  )

  t.test('install.sh --root lays out /opt/vcdn, the command, the units and /etc/vcdn below a root', async (t) => {
    const root = join(tmp.dir, 'install-root')
    await run('/bin/sh', [join(pkg, 'install.sh'), '--root', root], {
      cwd: work,
      env: { PATH: '/usr/bin:/bin' },
      timeout: STEP_TIMEOUT_MS,
    })
    t.equal(readlinkSync(join(root, 'opt', 'vcdn')), `vcdn-${VERSION}`)
    for (const unit of UNITS) t.ok(existsSync(join(root, 'etc', 'systemd', 'system', unit)), `${unit} installed`)
    t.ok(statSync(join(root, 'etc', 'vcdn')).isDirectory(), '/etc/vcdn exists')
    const version = await run(join(root, 'usr', 'local', 'bin', 'vcdn'), ['--version'], {
      cwd: work,
      env: { PATH: pathDir },
      timeout: STEP_TIMEOUT_MS,
    })
    t.equal(version.stdout, `vcdn ${VERSION} (node ${process.version})\n`)
  })
})
