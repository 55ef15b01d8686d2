/** Test certificates made with the openssl CLI (independent of tiseal's own PKI code). */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface TestPki {
  dir: string;
  ca: string; // ca.crt path
  /** Issue `<name>.crt` / `<name>.pem` with CN=name and SANs for `ips` + localhost. */
  issue(name: string, ips: string[]): { cert: string; key: string };
  cleanup(): void;
}

const openssl = (args: string[], cwd: string): void => {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
};

export function makePki(): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-lab-pki-'));
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=tiseal-lab-test-ca'], dir);
  return {
    dir,
    ca: path.join(dir, 'ca.crt'),
    issue(name, ips) {
      const ext = path.join(dir, `${name}.ext`);
      fs.writeFileSync(
        ext,
        [
          'basicConstraints=CA:FALSE',
          'keyUsage=digitalSignature,keyEncipherment',
          'extendedKeyUsage=serverAuth,clientAuth',
          `subjectAltName=${['DNS:localhost', 'IP:127.0.0.1', ...ips.map((ip) => `IP:${ip}`)].join(',')}`,
          '',
        ].join('\n'),
      );
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.pem`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', ext], dir);
      return { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.pem`) };
    },
    cleanup() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
