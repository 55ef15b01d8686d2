import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { sqlCredentials } from '../../src/sql/session';
import { sqlTlsFlags } from '../../src/commands/sql-tls';

describe('sql-tls command-line inputs', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-sqlcred-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads the password from a file (one trailing newline dropped), root with no password by default', () => {
    const f = path.join(dir, 'pw');
    fs.writeFileSync(f, 's3cret \n', { mode: 0o600 });
    expect(sqlCredentials({ sqlUser: 'ops', sqlPasswordFile: f })).toEqual({ user: 'ops', password: 's3cret ', cert: undefined, key: undefined });
    expect(sqlCredentials({})).toMatchObject({ user: 'root', password: '' });
  });

  it('names the file it cannot read, and the flag pair that is incomplete', () => {
    expect(() => sqlCredentials({ sqlPasswordFile: path.join(dir, 'missing') })).toThrow(path.join(dir, 'missing'));
    expect(() => sqlCredentials({ sqlCert: 'a.crt' })).toThrow('--sql-cert and --sql-key go together');
    expect(() => sqlCredentials({ sqlUser: 'a\nb' })).toThrow(/invalid --sql-user/);
  });

  it('accepts TLSv1.2 and TLSv1.3 as the minimum version, nothing older', () => {
    expect(sqlTlsFlags({ tlsVersion: 'TLSv1.3' }).tlsVersion).toBe('TLSv1.3');
    expect(() => sqlTlsFlags({ tlsVersion: 'TLSv1.1' })).toThrow(/invalid --tls-version 'TLSv1.1'/);
    expect(() => sqlTlsFlags({ extraSan: ['bad name'] })).toThrow(/invalid --extra-san/);
  });
});
