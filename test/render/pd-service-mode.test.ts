import { execFileSync } from 'child_process';
import { renderRunScript } from '../../src/render';
import { topo } from './helpers';

// pingcap/tiup embed/templates/scripts/run_pd.sh.tpl and run_pd_scale.sh.tpl:
//     env GODEBUG=madvdontneed=1 \
// {{- if .MSMode}}
//     PD_SERVICE_MODE=api \
// {{- end}}
//     bin/pd-server \
// with MSMode = topo.GlobalOptions.PDMode == "ms" (pkg/cluster/spec/pd.go InitConfig, ScaleConfig).
describe('run_pd.sh under PD microservices (global.pd_mode: ms)', () => {
  const ms = topo('global:\n  pd_mode: ms\npd_servers:\n  - host: 10.1.1.1\n  - host: 10.1.1.2\n');
  const plain = topo('pd_servers:\n  - host: 10.1.1.1\n  - host: 10.1.1.2\n');

  test.each([
    ['initial', { tls: false }],
    ['initial, TLS', { tls: true }],
    ['join, TLS', { tls: true, pdMode: 'join' as const }],
  ])('%s: PD_SERVICE_MODE=api stays in the env line, where TiUP puts it', (_n, opts) => {
    const s = renderRunScript(ms.instances[0], ms, opts);
    execFileSync('bash', ['-n'], { input: s });
    expect(s).toContain('    env GODEBUG=madvdontneed=1 \\\n    PD_SERVICE_MODE=api \\\n    bin/pd-server \\\n');
  });

  test('without pd_mode: ms there is no PD_SERVICE_MODE (TiUP keys it on pd_mode, not on tso/scheduling servers)', () => {
    expect(renderRunScript(plain.instances[0], plain, { tls: true })).not.toContain('PD_SERVICE_MODE');
    const other = topo('global:\n  pd_mode: pd\npd_servers:\n  - host: 10.1.1.1\n');
    expect(renderRunScript(other.instances[0], other, { tls: true })).not.toContain('PD_SERVICE_MODE');
  });
});
