/**
 * Certificate issuance: a CA and N server+client leaves through the same `createCA`/`issueLeaf`
 * tiseal uses; only the key type and the key generator differ. RSA 2048 (as TiUP) with Node's
 * native generator (one at a time, several at a time), with the worker-thread pool tiseal starts
 * before preflight, and with node-forge's pure-JS prime search; ECDSA P-256 (`--key-type ecdsa`,
 * CA included) one at a time.
 */
import os from 'os';
import { RsaKeyPool, createCA, issueLeaf, type KeyGen, type KeyType } from '../src/pki';
import { mapLimit } from '../src/util/concurrency';

export interface CertRun {
  /** Absent in results from before ECDSA was measured: RSA. */
  keyType?: KeyType;
  /** 'pool': RsaKeyPool, started together with the CA, as a command starts it before preflight. */
  keyGen: KeyGen | 'pool';
  /** Leaves issued at a time; for 'pool' the worker threads. */
  concurrency: number;
  leaves: number;
  caMs: number;
  leavesMs: number;
  totalMs: number;
  perLeafMs: number;
}

const CNS = ['pd', 'tikv', 'tidb', 'tiflash', 'cdc'];
const host = (i: number) => `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`;

function checked(issued: Array<{ certPem: string }>, leaves: number): void {
  if (issued.length !== leaves || issued.some((c) => !c.certPem.includes('BEGIN CERTIFICATE'))) throw new Error('issuance lost a certificate');
}

export async function issueMany(keyGen: KeyGen, leaves: number, concurrency: number, keyType: KeyType = 'rsa'): Promise<CertRun> {
  const t0 = performance.now();
  const ca = await createCA({ cluster: 'bench', keyGen, keyType });
  const t1 = performance.now();
  const ids = Array.from({ length: leaves }, (_, i) => i);
  const issued = await mapLimit(ids, concurrency, (i) => issueLeaf(ca, { commonName: CNS[i % 5]!, hosts: [host(i)], keyGen, keyType }));
  const t2 = performance.now();
  checked(issued, leaves);
  return { keyType, keyGen, concurrency, leaves, caMs: t1 - t0, leavesMs: t2 - t1, totalMs: t2 - t0, perLeafMs: (t2 - t1) / leaves };
}

/** RSA leaves with keys from the worker pool; the clock starts when the pool does (no preflight to hide behind here). */
export async function issuePooled(leaves: number, threads = os.availableParallelism()): Promise<CertRun> {
  const t0 = performance.now();
  const pool = new RsaKeyPool(leaves, { threads });
  try {
    const ca = await createCA({ cluster: 'bench', keyType: 'rsa' });
    const t1 = performance.now();
    const ids = Array.from({ length: leaves }, (_, i) => i);
    const issued = await mapLimit(ids, leaves, (i) => issueLeaf(ca, { commonName: CNS[i % 5]!, hosts: [host(i)], keyType: 'rsa', keyPool: pool }));
    const t2 = performance.now();
    checked(issued, leaves);
    if (pool.stats.fromWorkers !== leaves) throw new Error(`the pool made ${pool.stats.fromWorkers} of ${leaves} keys`);
    return { keyType: 'rsa', keyGen: 'pool', concurrency: pool.stats.threads, leaves, caMs: t1 - t0, leavesMs: t2 - t1, totalMs: t2 - t0, perLeafMs: (t2 - t0) / leaves };
  } finally {
    await pool.close();
  }
}

export async function benchCerts(o: { leaves: number; forgeLeaves: number; ecdsaLeaves: number; concurrency: number; log: (m: string) => void }): Promise<CertRun[]> {
  const runs: CertRun[] = [];
  o.log(`certs: ECDSA P-256 CA + ${o.ecdsaLeaves} leaves, one at a time`);
  runs.push(await issueMany('native', o.ecdsaLeaves, 1, 'ecdsa'));
  o.log(`certs: RSA CA + ${o.leaves} leaves, native, one at a time`);
  runs.push(await issueMany('native', o.leaves, 1));
  o.log(`certs: RSA CA + ${o.leaves} leaves, native, ${o.concurrency} at a time`);
  runs.push(await issueMany('native', o.leaves, o.concurrency));
  o.log(`certs: RSA CA + ${o.leaves} leaves, keys from the worker pool (${os.availableParallelism()} threads)`);
  runs.push(await issuePooled(o.leaves));
  o.log(`certs: RSA CA + ${o.forgeLeaves} leaves, node-forge pure JS (slow: seconds per key)`);
  runs.push(await issueMany('forge', o.forgeLeaves, 1));
  return runs;
}
