// A throwaway certificate authority for HTTPS tests, made with the openssl command line (Debian's
// openssl package): a CA certificate and leaf certificates it signs for given names, each a PEM
// file pair on disk as an operator would configure them. Used only by tests.
import { createHash, randomBytes, X509Certificate } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface CertPair {
  cert: string
  key: string
}

export interface TestCa {
  /** The CA certificate (PEM file), for clients to trust (`ca` of tls.connect, undici). */
  readonly cert: string
  readonly certPem: string
  /** Base64 SHA-256 of the CA's SubjectPublicKeyInfo (Chromium's --ignore-certificate-errors-spki-list). */
  readonly spkiSha256: string
  /**
   * A leaf certificate for `names` (DNS names, or IP addresses) with a fresh key. Written to
   * `<dir>/<file>.crt|.key` (file defaults to the first name): issuing again to the same file
   * replaces the pair as a renewal would (each file written whole, then renamed into place).
   * With isFullChain the certificate file holds the leaf and then the CA (a fullchain.pem).
   */
  issue(
    names: readonly string[],
    opts?: { file?: string; days?: number; isFullChain?: boolean },
  ): CertPair & { fingerprint256: string }
}

const CURVE = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

function openssl(args: readonly string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

/** The base64 SHA-256 of a certificate's public key (DER SubjectPublicKeyInfo). */
export function spkiSha256(certPem: string | Buffer): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' })
  return createHash('sha256').update(spki).digest('base64')
}

/** A new CA in `dir` (valid two days). */
export function makeTestCa(dir: string): TestCa {
  openssl(
    [
      'req',
      '-x509',
      ...CURVE,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=vcdn test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  )
  const cert = join(dir, 'ca.crt')
  const certPem = readFileSync(cert, 'utf8')
  return {
    cert,
    certPem,
    spkiSha256: spkiSha256(certPem),
    issue(names, opts = {}) {
      const file = (opts.file ?? names[0] ?? 'leaf').replace(/[^A-Za-z0-9.-]/g, '_')
      const tmp = `${file}.${randomBytes(4).toString('hex')}`
      const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',')
      writeFileSync(
        join(dir, `${tmp}.ext`),
        `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`,
      )
      openssl(['req', ...CURVE, '-keyout', `${tmp}.key`, '-out', `${tmp}.csr`, '-subj', `/CN=${names[0] ?? file}`], dir)
      const serial = randomBytes(8).toString('hex')
      openssl(
        [
          'x509',
          '-req',
          '-in',
          `${tmp}.csr`,
          '-CA',
          'ca.crt',
          '-CAkey',
          'ca.key',
          '-set_serial',
          `0x${serial}`,
          '-days',
          String(opts.days ?? 2),
          '-extfile',
          `${tmp}.ext`,
          '-out',
          `${tmp}.crt`,
        ],
        dir,
      )
      if (opts.isFullChain === true) {
        writeFileSync(join(dir, `${tmp}.crt`), readFileSync(join(dir, `${tmp}.crt`), 'utf8') + certPem)
      }
      const pair = { cert: join(dir, `${file}.crt`), key: join(dir, `${file}.key`) }
      renameSync(join(dir, `${tmp}.key`), pair.key)
      renameSync(join(dir, `${tmp}.crt`), pair.cert)
      return { ...pair, fingerprint256: new X509Certificate(readFileSync(pair.cert)).fingerprint256 }
    },
  }
}
