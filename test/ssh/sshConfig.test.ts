import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SshError } from '../../src/errors';
import { SshPool } from '../../src/ssh/pool';
import { hostPatternsMatch, loadHostConfig, parseJumpHost, parseSshConfig, resolveHostConfig } from '../../src/ssh/sshConfig';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-sshcfg-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const resolve = (text: string, host: string) => resolveHostConfig(parseSshConfig(text, 'cfg'), host);

test('Host patterns: *, ?, negation, several patterns on one line', () => {
  expect(hostPatternsMatch(['tikv-*'], 'tikv-1')).toBe(true);
  expect(hostPatternsMatch(['tikv-?'], 'tikv-10')).toBe(false);
  expect(hostPatternsMatch(['pd-1', 'pd-2'], 'pd-2')).toBe(true);
  expect(hostPatternsMatch(['*', '!bastion'], 'bastion')).toBe(false);
  expect(hostPatternsMatch(['!bastion'], 'other')).toBe(false);
  expect(hostPatternsMatch(['10.0.*'], '10.0.3.4')).toBe(true);
});

test('first obtained value wins; IdentityFile accumulates; top-of-file settings apply to all', () => {
  const text = `
# global
User deploy

Host db-*   !db-legacy
    HostName %h.internal
    Port 2222
    IdentityFile ~/.ssh/db_key
Host db-1
    Port 3333
    User admin
    IdentityFile /keys/%r-%h
Host *
    Port 22
    IdentityFile ~/.ssh/id_ed25519
`;
  const r = resolve(text, 'db-1');
  expect(r.hostName).toBe('db-1.internal');
  expect(r.port).toBe(2222); // db-* came first
  expect(r.user).toBe('deploy'); // the global line came before any Host
  expect(r.identityFiles).toEqual([
    path.join(os.homedir(), '.ssh/db_key'),
    '/keys/deploy-db-1.internal',
    path.join(os.homedir(), '.ssh/id_ed25519'),
  ]);
  const legacy = resolve(text, 'db-legacy');
  expect(legacy.hostName).toBeUndefined();
  expect(legacy.port).toBe(22);
  expect(resolve(text, 'other').identityFiles).toEqual([path.join(os.homedir(), '.ssh/id_ed25519')]);
});

test('keyword=value syntax, case-insensitive keywords, quoted values, CRLF', () => {
  const r = resolve('HOST=web\r\n  hostname = "10.0.0.9"\r\n  PORT=2200\r\n  identityfile "/my keys/id"\r\n', 'web');
  expect(r).toMatchObject({ hostName: '10.0.0.9', port: 2200, identityFiles: ['/my keys/id'] });
});

test('Match blocks are skipped except `Match all`', () => {
  const r = resolve('Match exec "false"\n  User skipped\nMatch all\n  Port 2022\nHost x\n  User xu\n', 'x');
  expect(r.user).toBe('xu');
  expect(r.port).toBe(2022);
});

test('ProxyJump: user@host:port lists, ssh:// URIs, IPv6, none', () => {
  expect(parseJumpHost('bastion')).toEqual({ user: undefined, host: 'bastion', port: undefined });
  expect(parseJumpHost('ops@10.0.0.1:2222')).toEqual({ user: 'ops', host: '10.0.0.1', port: 2222 });
  expect(parseJumpHost('ssh://ops@jump:22')).toEqual({ user: 'ops', host: 'jump', port: 22 });
  expect(parseJumpHost('[fd00::1]:2222')).toEqual({ user: undefined, host: 'fd00::1', port: 2222 });
  expect(() => parseJumpHost('h:99999')).toThrow(/invalid ProxyJump/);
  expect(resolve('Host t\n ProxyJump a@j1:2200,j2\n', 't').proxyJump).toEqual([
    { user: 'a', host: 'j1', port: 2200 },
    { user: undefined, host: 'j2', port: undefined },
  ]);
  expect(resolve('Host t\n ProxyJump none\nHost *\n ProxyJump j\n', 't').proxyJump).toEqual([]);
});

test('Include: relative to ~/.ssh or absolute, globbed, included Host blocks apply', () => {
  fs.writeFileSync(path.join(dir, '10-a.conf'), 'Host inc-*\n  Port 4000\n');
  fs.writeFileSync(path.join(dir, '20-b.conf'), 'Host inc-2\n  User incuser\n');
  const main = path.join(dir, 'config');
  fs.writeFileSync(main, `Include ${dir}/*.conf\nHost *\n  User fallback\n  Port 22\n`);
  expect(loadHostConfig(main, 'inc-2')).toMatchObject({ port: 4000, user: 'incuser' });
  expect(loadHostConfig(main, 'plain')).toMatchObject({ port: 22, user: 'fallback' });
  expect(loadHostConfig(path.join(dir, 'missing'), 'x')).toEqual({ identityFiles: [], proxyJump: [] });
});

test('invalid Port is an error naming the host', () => {
  expect(() => resolve('Host x\n Port abc\n', 'x')).toThrow(/invalid Port "abc" for x/);
});

test('SshPool.resolveTarget precedence: explicit port > --ssh-port > config; --ssh-user > config User', () => {
  const cfg = path.join(dir, 'pool_config');
  fs.writeFileSync(cfg, 'Host alias\n  HostName 127.0.0.9\n  Port 2201\n  User cfguser\n  ProxyJump j@127.0.0.8:2200\n');
  const fromConfig = new SshPool({ sshConfigFile: cfg }).resolveTarget('alias');
  expect(fromConfig).toMatchObject({ host: 'alias', hostName: '127.0.0.9', port: 2201, user: 'cfguser', proxyJump: [{ user: 'j', host: '127.0.0.8', port: 2200 }] });
  const flags = new SshPool({ sshConfigFile: cfg, port: 2300, user: 'tidb' });
  expect(flags.resolveTarget('alias')).toMatchObject({ port: 2300, user: 'tidb' });
  expect(flags.resolveTarget('alias', 2400).port).toBe(2400);
  expect(new SshPool({ sshConfigFile: false }).resolveTarget('alias')).toMatchObject({ hostName: 'alias', port: 22, proxyJump: [] });
});

test('login user precedence like OpenSSH: --ssh-user > ssh config User > topology user > local user, each named as the source', () => {
  const cfg = path.join(dir, 'user_config');
  fs.writeFileSync(cfg, 'Host behind-jump\n  User admin\n  ProxyJump ops@bastion\nHost plain\n  HostName 10.0.0.2\n');
  const topo = { defaultUser: 'tidb', defaultUserSource: 'topology global.user in t.yaml' };
  // The config's User for a host beats the topology user (the hop keeps its own user).
  expect(new SshPool({ sshConfigFile: cfg, ...topo }).resolveTarget('behind-jump')).toMatchObject({ user: 'admin', userSource: `User in ${cfg}:2`, proxyJump: [{ user: 'ops', host: 'bastion' }] });
  // No User for the host: the topology user.
  expect(new SshPool({ sshConfigFile: cfg, ...topo }).resolveTarget('plain')).toMatchObject({ user: 'tidb', userSource: 'topology global.user in t.yaml' });
  // --ssh-user beats everything.
  expect(new SshPool({ sshConfigFile: cfg, user: 'root', ...topo }).resolveTarget('behind-jump')).toMatchObject({ user: 'root', userSource: '--ssh-user' });
  expect(new SshPool({ sshConfigFile: false }).resolveTarget('plain').userSource).toBe('the local user name');
});

test('a broken ssh config surfaces as SshError naming the file', () => {
  const cfg = path.join(dir, 'broken_config');
  fs.writeFileSync(cfg, 'Host x\n  Port seventy\n');
  const err = (() => {
    try {
      new SshPool({ sshConfigFile: cfg }).resolveTarget('x');
    } catch (e) {
      return e as SshError;
    }
    return undefined;
  })();
  expect(err).toBeInstanceOf(SshError);
  expect(err!.message).toBe(`x: ${cfg}: invalid Port "seventy" for x`);
});
