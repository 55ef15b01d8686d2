import { COMPONENTS } from '../../src/components';
import { livePort } from '../../src/tasks/facts';
import { parseTopology } from '../../src/topology';

// pingcap/tiup pkg/cluster/spec/tiflash.go TiFlashSpec:
//   FlashServicePort `yaml:"flash_service_port" default:"3930"`, FlashProxyPort `default:"20170"`,
//   FlashProxyStatusPort `default:"20292"`, StatusPort `yaml:"metrics_port" default:"8234"`.
// Under TLS each of them serves TLS (the metrics port with VERIFY_STRICT, MetricsPrometheus.cpp).
describe('TiFlash TLS ports', () => {
  it('include metrics_port (default 8234), as TiUP has it', () => {
    const t = parseTopology('pd_servers:\n  - host: h\ntiflash_servers:\n  - host: h\n', 't.yaml');
    const tiflash = t.instances.find((i) => i.role === 'tiflash')!;
    expect(COMPONENTS.tiflash.tlsPorts(tiflash)).toEqual([
      { name: 'flash_service_port', port: 3930 },
      { name: 'flash_proxy_port', port: 20170 },
      { name: 'flash_proxy_status_port', port: 20292 },
      { name: 'metrics_port', port: 8234 },
    ]);
    expect(livePort(tiflash)).toBe(3930);
  });
  it('follow a metrics_port set in the topology', () => {
    const t = parseTopology('pd_servers:\n  - host: h\ntiflash_servers:\n  - host: h\n    metrics_port: 18234\n', 't.yaml');
    const tiflash = t.instances.find((i) => i.role === 'tiflash')!;
    expect(COMPONENTS.tiflash.tlsPorts(tiflash)).toContainEqual({ name: 'metrics_port', port: 18234 });
  });
});
