// HTTPS of the https-* scenarios: one certificate for both edges (from a throwaway CA), and the
// client side limited to TLS 1.3 with TLS_AES_128_GCM_SHA256 through an OpenSSL configuration file
// (OPENSSL_CONF) that wrk's libssl reads at start. The limit is on the client because uWS's
// BoringSSL cannot restrict TLS 1.3 suites server-side (it picks AES-256-GCM when a client offers
// both); nginx then negotiates the same suite. negotiated() asks Debian's openssl, which links the
// same libssl.so.3 as wrk, what a client with that file gets from a server.
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeTestCa } from '../../shared/testing/index.js'
import type { EdgeTls } from './stacks.js'

export const TLS_PROTOCOL = 'TLSv1.3'
export const TLS_SUITE = 'TLS_AES_128_GCM_SHA256'

export interface BenchTls {
  /** The edges' certificate and key (PEM files). */
  edge: EdgeTls
  /** Environment of a load child that limits its TLS to TLS_PROTOCOL with TLS_SUITE. */
  clientEnv: Record<string, string>
}

/** A CA and a leaf for 127.0.0.1 in `dir`, and the client's OpenSSL configuration file. */
export function benchTls(dir: string): BenchTls {
  mkdirSync(dir, { recursive: true })
  const ca = makeTestCa(dir)
  const leaf = ca.issue(['127.0.0.1', 'edge.bench'], { file: 'edge' })
  const conf = join(dir, 'client-openssl.cnf')
  // The system_default section applies to every SSL_CTX the process creates (config(5ssl)).
  writeFileSync(
    conf,
    [
      'openssl_conf = openssl_init',
      '[openssl_init]',
      'ssl_conf = ssl_module',
      '[ssl_module]',
      'system_default = bench_client',
      '[bench_client]',
      `MinProtocol = ${TLS_PROTOCOL}`,
      `Ciphersuites = ${TLS_SUITE}`,
      '',
    ].join('\n'),
  )
  return { edge: { cert: leaf.cert, key: leaf.key }, clientEnv: { OPENSSL_CONF: conf } }
}

/**
 * The protocol and cipher suite a client with `env` negotiates with the server at `url`
 * (`openssl s_client -brief`, one handshake, bounded by a timeout).
 */
export function negotiated(url: string, env: Readonly<Record<string, string>>): { protocol: string; suite: string } {
  const u = new URL(url)
  // -brief reports on stderr; stdin closed ends the session after the handshake.
  const r = spawnSync('openssl', ['s_client', '-brief', '-connect', `${u.hostname}:${u.port}`], {
    env: { ...process.env, ...env },
    input: '',
    timeout: 15_000,
    encoding: 'utf8',
  })
  const out = `${r.stdout}${r.stderr}`
  const protocol = /Protocol version:\s*(\S+)/.exec(out)?.[1] ?? ''
  const suite = /Ciphersuite:\s*(\S+)/.exec(out)?.[1] ?? ''
  if (protocol === '' || suite === '') throw new Error(`no TLS handshake with ${url}: ${out.slice(-500)}`)
  return { protocol, suite }
}
