#!/usr/bin/env node
// The `vcdn` command (package.json "bin"): starts a tier or runs an operator command. This folder
// is the only place that imports more than one tier; it imports only their main.ts.
import { readFileSync } from 'node:fs'
import { parseCli } from '../shared/process/index.js'
import { signedPath } from '../shared/token/index.js'

const USAGE = `usage: vcdn <command> [options]
  origin  --config origin.json      start the origin (content server, control API)
  shield  --config shield.json      start a shield (mid-tier cache)
  edge    --config edge.json        start an edge (PoP cache, playback tokens)
  demo    [--data-dir .vcdn-demo] [--port 8080]
                                    origin + shield + edge on loopback, prints a signed URL
  sign    --config <edge|origin>.json --prefix /v/<id>/ [--path /v/<id>/master.m3u8]
          [--ttl 3600] [--ip 1.2.3.4] [--kid k1] [--base http://edge:port]
                                    print a signed playback path (or URL with --base)
  purge   --admin http://127.0.0.1:<adminPort> --secret <tierSecret> --prefix /v/<id>/
                                    purge a prefix on one node
`

async function sign(argv: readonly string[]): Promise<void> {
  const { configFile, flags } = parseCli(argv)
  if (configFile === undefined || typeof flags['prefix'] !== 'string')
    throw new UsageError('sign needs --config and --prefix')
  const file = JSON.parse(readFileSync(configFile, 'utf8')) as {
    signingKeys?: Record<string, string>
    activeKey?: string
  }
  const keys = file.signingKeys ?? {}
  const kid = typeof flags['kid'] === 'string' ? flags['kid'] : (file.activeKey ?? Object.keys(keys)[0])
  if (kid === undefined || keys[kid] === undefined)
    throw new UsageError(`no signing key ${String(kid)} in ${configFile}`)
  const ttlS = typeof flags['ttl'] === 'string' ? Number(flags['ttl']) : 3600
  if (!Number.isInteger(ttlS) || ttlS <= 0) throw new UsageError('--ttl must be a positive integer (seconds)')
  const path = signedPath({
    prefix: flags['prefix'],
    ...(typeof flags['path'] === 'string' ? { path: flags['path'] } : {}),
    ttlS,
    kid,
    keys,
    ...(typeof flags['ip'] === 'string' ? { ip: flags['ip'] } : {}),
    nowMs: Date.now(),
  })
  const base = typeof flags['base'] === 'string' ? flags['base'].replace(/\/$/, '') : ''
  process.stdout.write(`${base}${path}\n`)
}

async function purge(argv: readonly string[]): Promise<void> {
  const { flags } = parseCli(argv)
  const admin = flags['admin']
  const secret = flags['secret']
  const prefix = flags['prefix']
  if (typeof admin !== 'string' || typeof secret !== 'string' || typeof prefix !== 'string') {
    throw new UsageError('purge needs --admin, --secret and --prefix')
  }
  const res = await fetch(`${admin.replace(/\/$/, '')}/purge`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-vcdn-tier': secret },
    body: JSON.stringify({ prefix }),
  })
  process.stdout.write(`${res.status} ${await res.text()}\n`)
  if (!res.ok) process.exitCode = 1
}

class UsageError extends Error {}

async function run(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv
  switch (command) {
    case 'origin':
      return (await import('../origin/src/main.js')).main(rest)
    case 'shield':
      return (await import('../shield/src/main.js')).main(rest)
    case 'edge':
      return (await import('../edge/src/main.js')).main(rest)
    case 'demo':
      return (await import('./demo.js')).demo(parseCli(rest).flags)
    case 'sign':
      return sign(rest)
    case 'purge':
      return purge(rest)
    case 'token':
      return (await import('../origin/src/main.js')).tokenCommand(rest)
    default:
      process.stderr.write(USAGE)
      process.exitCode = command === undefined || command === 'help' || command === '--help' ? 0 : 2
  }
}

run(process.argv.slice(2)).catch((err: unknown) => {
  const e = err as { code?: string; message?: string }
  process.stderr.write(`vcdn: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}\n`)
  if (err instanceof UsageError) process.stderr.write(USAGE)
  process.exit(2)
})
