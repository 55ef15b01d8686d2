/**
 * `tiseal audit`: on the plaintext lab it reports the TLS FAILs; after `tls enable --verify-cn`
 * and `encrypt enable` it passes (redact-info-log stays a WARN, so --fail-on warn still fails).
 */
import { labReset, LabInfo } from '../../lab';
import { describeLab, ensureLab } from './helpers';
import { runTiseal } from './tiseal';
import { validate } from '../support/json-schema';
import * as schema from '../../docs/audit.schema.json';

jest.setTimeout(10 * 60_000);

type Finding = { check: string; level: string; target: string; evidence: string };

async function audit(info: LabInfo, extra: string[] = []): Promise<{ code: number | null; findings: Finding[] }> {
  const r = await runTiseal(info, ['audit', info.topologyFile, '--json', ...extra]);
  const out = JSON.parse(r.stdout) as { findings: Finding[] };
  expect(validate(schema, out)).toEqual([]);
  return { code: r.code, findings: out.findings };
}

describeLab('tiseal audit on the lab', () => {
  let info: LabInfo;

  beforeAll(async () => {
    info = await ensureLab();
    await labReset();
  }, 15 * 60_000);

  it('fails a plaintext cluster and passes it once TLS with CN lists and encryption are on', async () => {
    const plain = await audit(info);
    expect(plain.code).toBe(1);
    const fails = plain.findings.filter((f) => f.level === 'FAIL');
    expect(fails.some((f) => f.check === 'tls' && f.target.startsWith('10.77.0.11:2379'))).toBe(true);
    expect(fails.some((f) => f.check === 'tls' && f.target.startsWith('10.77.0.12:20160'))).toBe(true);
    expect(fails.some((f) => f.check === 'encryption-at-rest')).toBe(true);
    expect(plain.findings.find((f) => f.check === 'replicas')?.level).toBe('PASS');

    for (const args of [['tls', 'enable', info.topologyFile, '--yes', '--verify-cn'], ['encrypt', 'enable', info.topologyFile, '--yes']]) {
      const r = await runTiseal(info, args);
      if (r.code !== 0) throw new Error(`${args.join(' ')} failed (${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr}`);
    }
    const secured = await audit(info);
    expect(secured.findings.filter((f) => f.level === 'FAIL')).toEqual([]);
    expect(secured.code).toBe(0);
    for (const check of ['tls', 'mtls', 'tls-version', 'certificate', 'caller-identity', 'key-files', 'ca-key', 'encryption-at-rest']) {
      expect(`${check}: ${secured.findings.filter((f) => f.check === check && f.level === 'PASS').length > 0}`).toBe(`${check}: true`);
    }
    expect((await audit(info, ['--fail-on', 'warn'])).code).toBe(1);
  });
});
