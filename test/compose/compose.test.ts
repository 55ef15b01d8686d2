import * as fs from 'fs';
import * as yaml from 'js-yaml';
import * as path from 'path';
import { BASE_PACKAGES, PREPARE_SCRIPT } from '../../lab/rootfs';
import { DEFAULT_SUBNET } from '../../lab/options';
import { gatewayAddress, hostnameFor, parseSubnet } from '../../lab/subnet';
import { loadTopology } from '../../src/topology';

const ROOT = path.join(__dirname, '..', '..');
type Service = {
  hostname: string;
  networks: Record<string, { ipv4_address: string }>;
  expose: string[];
  extra_hosts: string[];
  volumes: string[];
  privileged?: boolean;
  build?: { context: string };
};
type Compose = { services: Record<string, Service>; networks: Record<string, { ipam: { config: Array<{ subnet: string; gateway: string }> } }> };

const compose = yaml.load(fs.readFileSync(path.join(ROOT, 'docker-compose.test.yml'), 'utf8')) as Compose;
const topo = loadTopology(path.join(ROOT, 'lab', 'topologies', 'default.yaml'));

test('one service per topology host, same hostnames and static addresses', () => {
  const want = topo.hosts.map((h) => h.host);
  expect(Object.keys(compose.services).sort()).toEqual(want.map(hostnameFor).sort());
  for (const ip of want) {
    const svc = compose.services[hostnameFor(ip)];
    expect(svc.hostname).toBe(hostnameFor(ip));
    expect(Object.values(svc.networks).map((n) => n.ipv4_address)).toEqual([ip]);
    expect([...svc.extra_hosts].sort()).toEqual(want.map((h) => `${hostnameFor(h)}:${h}`).sort());
  }
});

test('each service exposes ssh and exactly the ports of its instances', () => {
  for (const { host } of topo.hosts) {
    const ports = topo.instances.filter((i) => i.host === host).flatMap((i) => Object.values(i.ports));
    const exposed = compose.services[hostnameFor(host)].expose.map(Number);
    expect([...exposed].sort((a, b) => a - b)).toEqual([22, ...ports].sort((a, b) => a - b));
  }
});

test('the network is the lab subnet', () => {
  const nets = Object.values(compose.networks);
  expect(nets).toHaveLength(1);
  const subnet = parseSubnet(DEFAULT_SUBNET);
  expect(nets[0].ipam.config).toEqual([{ subnet: subnet.cidr, gateway: gatewayAddress(subnet) }]);
});

test('hosts get what the emulators contract expects: repo at /opt/tiseal, node at /usr/local/bin/node, the lab key', () => {
  for (const svc of Object.values(compose.services)) {
    const targets = svc.volumes.map((v) => v.split(':')[v.split(':').length - (v.endsWith(':ro') || v.endsWith(':rw') ? 2 : 1)]);
    expect(targets).toEqual(expect.arrayContaining(['/opt/tiseal', '/usr/local/bin/node', '/home/tidb/.ssh/authorized_keys']));
    expect(svc.privileged).toBe(true);
    expect(svc.build?.context).toBe('lab/docker');
  }
});

test('the Docker image is prepared exactly like the nspawn rootfs', () => {
  const dockerfile = fs.readFileSync(path.join(ROOT, 'lab', 'docker', 'Dockerfile'), 'utf8');
  const install = /apt-get install -y -q --no-install-recommends ([^\\\n]+)/.exec(dockerfile);
  expect(install?.[1].trim().split(/\s+/).sort()).toEqual([...BASE_PACKAGES].sort());
  const prepare = fs.readFileSync(path.join(ROOT, 'lab', 'docker', 'prepare.sh'), 'utf8');
  expect(prepare.endsWith(PREPARE_SCRIPT)).toBe(true);
});
