import * as fs from 'fs';
import { CertError, localIoError } from '../../errors';
import type { Action, Step } from '../../engine/step';
import { certMatchesKey, createCA, issueLeaf, LOCAL_SANS, parseBundle, parseCertificate, verifyChain } from '../../pki';
import { sqlCaCommonName, sqlCertStore } from '../../pki/sql-store';
import { certStillGood, instanceSans, leafKeyType, parseExtraSans } from '../certs/issue';
import type { SqlTlsContext } from './context';

function readPem(flag: string, file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw localIoError(e, file, `read ${flag}`, `check the path given to ${flag}`);
  }
}

/** The operator's own server certificate (corporate CA): one pair for every TiDB, checked before any change. */
export function checkOwnCertificate(flags: SqlTlsContext['sql']['flags']): { caPem: string; certPem: string; keyPem: string } | undefined {
  if (!flags.cert && !flags.key && !flags.caCert) return undefined;
  if (!flags.cert || !flags.key || !flags.caCert) throw new CertError('--ca-cert, --cert and --key go together for sql-tls', { suggestion: 'pass all three (the CA bundle clients trust, the server certificate with its intermediates, its key), or none to issue from the SQL CA' });
  const caPem = readPem('--ca-cert', flags.caCert);
  const certPem = readPem('--cert', flags.cert);
  const keyPem = readPem('--key', flags.key);
  if (parseBundle(caPem).length === 0) throw new CertError(`${flags.caCert}: no PEM certificate in it`, { suggestion: 'pass the CA certificate (PEM) with --ca-cert' });
  let matches: boolean;
  try {
    matches = certMatchesKey(certPem, keyPem);
  } catch (e) {
    throw new CertError(`${flags.key}: ${(e as Error).message}`, { suggestion: 'pass the unencrypted PEM private key of --cert', cause: e });
  }
  if (!matches) throw new CertError(`${flags.key} is not the key of ${flags.cert}`, { suggestion: 'pass the private key that belongs to the certificate' });
  const chain = verifyChain(certPem, caPem, { untrustedPem: certPem });
  if (!chain.ok) throw new CertError(`${flags.cert} does not chain to ${flags.caCert}: ${chain.reason}`, { suggestion: 'put the intermediates after the server certificate in --cert, and the root in --ca-cert' });
  const info = parseCertificate(certPem);
  if (info.notAfter.getTime() < Date.now()) throw new CertError(`${flags.cert} expired ${info.notAfter.toISOString()}`, { suggestion: 'use a valid certificate' });
  return { caPem, certPem, keyPem };
}

/** Local SQL certificate material: the SQL CA (create or reuse, apart from the cluster CA) or the operator's own pair. */
export const sqlCertificatesStep: Step<SqlTlsContext> = {
  id: 'sql-certificates',
  title: 'SQL certificates: the SQL CA (local, apart from the cluster CA)',
  async decide(ctx) {
    const { sql } = ctx;
    if (sql.want === 'off') return { actions: [], reason: 'keeping the SQL CA and certificates' };
    const own = checkOwnCertificate(sql.flags);
    if (own) {
      sql.caPem = own.caPem;
      sql.issued = false;
      sql.leafGood = (_inst, cert, key) => cert === own.certPem && key === own.keyPem;
      sql.leafFor = async () => ({ certPem: own.certPem, keyPem: own.keyPem });
      return { actions: [], reason: `using the operator's certificate ${sql.flags.cert}` };
    }
    const store = sqlCertStore(ctx.opts.stateDir, ctx.cluster.name);
    const actions: Action[] = [];
    let ca;
    if (store.hasCA()) {
      ca = store.loadCA();
      if (!ca.outlives(sql.flags.certDays)) throw new CertError(`the SQL CA in ${store.dir} expires ${ca.expiresAt.toISOString()}, before ${sql.flags.certDays}-day certificates would`, { suggestion: 'pass a smaller --cert-days' });
    } else {
      const created = await createCA({ cluster: ctx.cluster.name, commonName: sqlCaCommonName(ctx.cluster.name), days: sql.flags.caDays, keyType: sql.flags.keyType });
      ca = created;
      actions.push({ title: `create the SQL CA (CN "${created.info.subjectCN}", ${sql.flags.caDays} days) in ${store.dir}; its key stays on this machine`, run: () => store.saveCA(created) });
    }
    const extra = parseExtraSans(sql.flags.extraSan);
    const authority = ca;
    sql.caPem = authority.bundlePem;
    sql.issued = true;
    sql.leafGood = (inst, cert, key) => certStillGood(cert, authority, instanceSans(inst, extra), new Date(), sql.flags.keyType) && certMatchesKey(cert, key);
    sql.leafFor = async (inst, keepSans = [], current) => {
      const hosts = [...new Set([...instanceSans(inst, extra), ...keepSans.filter((n) => !(LOCAL_SANS as readonly string[]).includes(n))])];
      const leaf = await issueLeaf(authority, { commonName: inst.certName, hosts, days: sql.flags.certDays, keyType: leafKeyType(sql.flags.keyType, current), keyPool: ctx.keyPool });
      return { certPem: leaf.fullChainPem, keyPem: leaf.keyPem };
    };
    return actions.length ? { actions } : { actions: [], reason: `reusing the SQL CA in ${store.dir}` };
  },
};
