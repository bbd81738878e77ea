#!/usr/bin/env node
// The `vcdn` command (package.json "bin"): starts a tier or runs an operator command. This folder
// is the only place that imports more than one tier; it imports only their main.ts.
import { readFileSync } from 'node:fs'
import { secretProblem } from '../shared/config/index.js'
import { parseCli } from '../shared/process/index.js'
import { isVideoDirAcl, signedPath } from '../shared/token/index.js'
import { isTier, tierHelp } from './config-docs.js'

const USAGE = `usage: vcdn <command> [options]    (vcdn <tier> --help: that tier's config keys)
  origin  --config origin.json      start the origin (content server, control API)
  shield  --config shield.json      start a shield (mid-tier cache)
  edge    --config edge.json        start an edge (PoP cache, playback tokens)
  demo    [file] [--data-dir .vcdn-demo] [--port 8080] [--seconds 20]
                                    origin + shield + edge + transcoder on loopback; ingests a sample; prints a signed URL
  transcoder --config transcoder.json
                                    start a transcoder (claims jobs from the origin)
  sign    --config <edge|origin>.json --prefix /v/<id>/ [--path /v/<id>/master.m3u8]
          [--ttl 3600] [--ip 1.2.3.4] [--kid k1] [--base http://edge:port] [--allow-broad]
                                    print a signed playback path (or URL with --base); the ACL is
                                    one video directory unless --allow-broad (e.g. / opens every video)
  upload  <file> --origin http://origin --token <jwt> [--title t] [--wait] [--state-file f]
                                    resumable upload with a progress bar (tus, or in parts straight to
                                    the S3 bucket when the origin offers it); prints the id first;
                                    run again after an interruption to resume into the same video
                                    (remembered in $XDG_STATE_HOME/vcdn/uploads.json)
  videos  list|delete <id> --origin http://origin --token <jwt> [--json]
                                    your videos (id, status, progress, created), or delete one
  status  <id> --origin http://origin --token <jwt> [--watch]
                                    a video's status and the job's progress
  token   --config origin.json --sub <owner> --role uploader|admin|worker [--ttl 3600]
                                    mint a control-API JWT
  purge   --admin http://127.0.0.1:<adminPort> --secret <tierSecret> --prefix /v/<id>/ | --key /v/<id>/<file> [--soft]
                                    purge a prefix or a key on one node (--soft: keep, revalidate)
  loadtest --players N | --rps N --duration S [options] <URL>
                                    load an edge like N HLS players, or at a request rate (vcdn loadtest --help)
`

async function sign(argv: readonly string[]): Promise<void> {
  const { configFile, flags } = parseCli(argv)
  if (configFile === undefined || typeof flags['prefix'] !== 'string')
    throw new UsageError('sign needs --config and --prefix')
  const file = JSON.parse(readFileSync(configFile, 'utf8')) as {
    signingKeys?: Record<string, string>
    activeKey?: string
  }
  const prefix = flags['prefix']
  if (!isVideoDirAcl(prefix) && flags['allow-broad'] !== true) {
    throw new UsageError(
      `--prefix ${prefix} is not one whole video directory /v/<id>/; a broader ACL opens every video under it: pass --allow-broad to sign it anyway`,
    )
  }
  const keys = file.signingKeys ?? {}
  const kid = typeof flags['kid'] === 'string' ? flags['kid'] : (file.activeKey ?? Object.keys(keys)[0])
  if (kid === undefined || keys[kid] === undefined)
    throw new UsageError(`no signing key ${String(kid)} in ${configFile}`)
  // The edge refuses such a key at start: a token signed with it would open nothing (or, worse,
  // be forgeable by anyone who read the example config).
  const weak = secretProblem(keys[kid], `signingKeys.${kid}`)
  if (weak !== null) throw new UsageError(`${configFile}: ${weak}`)
  const ttlS = typeof flags['ttl'] === 'string' ? Number(flags['ttl']) : 3600
  if (!Number.isInteger(ttlS) || ttlS <= 0) throw new UsageError('--ttl must be a positive integer (seconds)')
  const path = signedPath({
    prefix,
    isBroadAllowed: flags['allow-broad'] === true,
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
  const key = flags['key']
  const target = typeof prefix === 'string' ? { prefix } : typeof key === 'string' ? { key } : null
  if (typeof admin !== 'string' || typeof secret !== 'string' || target === null) {
    throw new UsageError('purge needs --admin, --secret and --prefix or --key')
  }
  const res = await fetch(`${admin.replace(/\/$/, '')}/purge`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-vcdn-tier': secret },
    body: JSON.stringify(flags['soft'] === true ? { ...target, soft: true } : target),
  })
  process.stdout.write(`${res.status} ${await res.text()}\n`)
  if (!res.ok) process.exitCode = 1
}

class UsageError extends Error {}

function apiTarget(flags: Record<string, string | true>): { origin: string; token: string } {
  const origin = flags['origin']
  const token = flags['token']
  if (typeof origin !== 'string' || typeof token !== 'string') throw new UsageError('needs --origin and --token')
  return { origin, token }
}

async function upload(argv: readonly string[]): Promise<void> {
  const { flags, positional } = parseCli(argv)
  const file = positional[0]
  if (file === undefined) throw new UsageError('upload needs a file')
  const target = apiTarget(flags)
  const { defaultUploadStateFile, uploadFile, waitReady } = await import('./upload.js')
  const stateFile = typeof flags['state-file'] === 'string' ? flags['state-file'] : defaultUploadStateFile(process.env)
  const id = await uploadFile(target, file, {
    showProgress: true,
    stateFile,
    // The id first, so an interrupted upload still says which video it was going into.
    onVideo: (videoId, resumedAtBytes) => {
      if (resumedAtBytes !== null) process.stderr.write(`resuming video ${videoId} at byte ${resumedAtBytes}\n`)
      process.stdout.write(`${videoId}\n`)
    },
    ...(typeof flags['title'] === 'string' ? { title: flags['title'] } : {}),
  })
  if (flags['wait'] === true) {
    const v = await waitReady(target, id, { timeoutMs: 3_600_000, showProgress: true })
    process.stdout.write(`${JSON.stringify(v, null, 2)}\n`)
    if (v.status !== 'ready') process.exitCode = 1
  }
}

async function status(argv: readonly string[]): Promise<void> {
  const { flags, positional } = parseCli(argv)
  const id = positional[0]
  if (id === undefined) throw new UsageError('status needs a video id')
  const target = apiTarget(flags)
  const { videoStatus, waitReady } = await import('./upload.js')
  const v =
    flags['watch'] === true
      ? await waitReady(target, id, { timeoutMs: 3_600_000, showProgress: true })
      : await videoStatus(target, id)
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`)
}

async function videos(argv: readonly string[]): Promise<void> {
  const { flags, positional } = parseCli(argv)
  const target = apiTarget(flags)
  const { deleteVideo, listVideos, videoTable } = await import('./videos.js')
  if (positional[0] === 'list') {
    const rows = await listVideos(target)
    process.stdout.write(flags['json'] === true ? `${JSON.stringify(rows, null, 2)}\n` : videoTable(rows))
  } else if (positional[0] === 'delete' && positional[1] !== undefined) {
    process.stdout.write(`${JSON.stringify(await deleteVideo(target, positional[1]))}\n`)
  } else {
    throw new UsageError('videos needs list, or delete <id>')
  }
}

async function run(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv
  // `vcdn <tier> --help`: the tier's config keys (the table docs/config.md is generated from).
  if (isTier(command) && (rest.includes('--help') || rest.includes('-h'))) {
    process.stdout.write(await tierHelp(command))
    return
  }
  switch (command) {
    case 'origin':
      return (await import('../origin/src/main.js')).main(rest)
    case 'shield':
      return (await import('../shield/src/main.js')).main(rest)
    case 'edge':
      return (await import('../edge/src/main.js')).main(rest)
    case 'transcoder':
      return (await import('../transcoder/src/main.js')).main(rest)
    case 'demo': {
      const { flags, positional } = parseCli(rest)
      return (await import('./demo.js')).demo(flags, positional)
    }
    case 'sign':
      return sign(rest)
    case 'purge':
      return purge(rest)
    case 'upload':
      return upload(rest)
    case 'status':
      return status(rest)
    case 'videos':
      return videos(rest)
    case 'token':
      return (await import('../origin/src/main.js')).tokenCommand(rest)
    case 'loadtest':
      return (await import('./loadtest.js')).loadtest(rest)
    default: {
      // Asked for, the usage is the answer (stdout, 0); an unknown command is an error (stderr, 2).
      const isHelp = command === undefined || command === 'help' || command === '--help' || command === '-h'
      const out = isHelp ? process.stdout : process.stderr
      out.write(USAGE)
      process.exitCode = isHelp ? 0 : 2
    }
  }
}

run(process.argv.slice(2)).catch((err: unknown) => {
  const e = err as { code?: string; message?: string }
  process.stderr.write(`vcdn: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}\n`)
  if (err instanceof UsageError) process.stderr.write(USAGE)
  process.exit(2)
})
