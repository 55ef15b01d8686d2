/**
 * Certificate issuance: a CA and N server+client leaves (RSA 2048, as TiUP), with Node's native
 * key generation and with node-forge's pure-JS prime search. Leaves go through the same
 * `issueLeaf` tiseal uses; only the key generator differs.
 */
import { createCA, issueLeaf, type KeyGen } from '../src/pki';
import { mapLimit } from '../src/util/concurrency';

export interface CertRun {
  keyGen: KeyGen;
  concurrency: number;
  leaves: number;
  caMs: number;
  leavesMs: number;
  totalMs: number;
  perLeafMs: number;
}

export async function issueMany(keyGen: KeyGen, leaves: number, concurrency: number): Promise<CertRun> {
  const t0 = performance.now();
  const ca = await createCA({ cluster: 'bench', keyGen });
  const t1 = performance.now();
  const ids = Array.from({ length: leaves }, (_, i) => i);
  const issued = await mapLimit(ids, concurrency, (i) =>
    issueLeaf(ca, { commonName: ['pd', 'tikv', 'tidb', 'tiflash', 'cdc'][i % 5], hosts: [`10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`], keyGen }),
  );
  const t2 = performance.now();
  if (issued.length !== leaves || issued.some((c) => !c.certPem.includes('BEGIN CERTIFICATE'))) throw new Error('issuance lost a certificate');
  return { keyGen, concurrency, leaves, caMs: t1 - t0, leavesMs: t2 - t1, totalMs: t2 - t0, perLeafMs: (t2 - t1) / leaves };
}

export async function benchCerts(o: { leaves: number; forgeLeaves: number; concurrency: number; log: (m: string) => void }): Promise<CertRun[]> {
  const runs: CertRun[] = [];
  o.log(`certs: CA + ${o.leaves} leaves, native, one at a time`);
  runs.push(await issueMany('native', o.leaves, 1));
  o.log(`certs: CA + ${o.leaves} leaves, native, ${o.concurrency} at a time`);
  runs.push(await issueMany('native', o.leaves, o.concurrency));
  o.log(`certs: CA + ${o.forgeLeaves} leaves, node-forge pure JS (slow: seconds per key)`);
  runs.push(await issueMany('forge', o.forgeLeaves, 1));
  return runs;
}
