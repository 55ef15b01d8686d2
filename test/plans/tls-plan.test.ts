import * as path from 'path';
import { tlsSteps } from '../../src/plans/tls';
import type { TlsContext } from '../../src/tasks/context';
import { loadTopology } from '../../src/topology';
import { fakeTlsContext } from '../support/tls-context';

const topology = loadTopology(path.join(__dirname, '..', '..', 'lab', 'topologies', 'default.yaml'));
const ctx = (want: 'on' | 'off', flags: Partial<TlsContext['flags']> = {}) => fakeTlsContext({ want, topology, keepPd: undefined, removedPds: [], flags: { keyType: 'rsa', ...flags } });

describe('the TLS switch plan', () => {
  it('stages everything, restarts everything at once (overlap, the default; the tier steps stay as the resume net), then fixes peer URLs and scales PD out', () => {
    expect(tlsSteps(ctx('on', { schedule: 'overlap' })).map((s) => s.id)).toEqual(tlsSteps(ctx('on')).map((s) => s.id));
    expect(tlsSteps(ctx('on')).map((s) => s.id)).toEqual([
      'pd-force-leftovers', // first: a forced PD a killed quorum recovery left running stands in for the kept one
      'save-pd',
      'scale-in',
      'certificates',
      'stage',
      'restart-overlap',
      'restart-pd',
      'restart-tikv',
      'restart-tidb',
      'restart-tiflash',
      'restart-cdc',
      'restart-prometheus', // the lab runs Debian's Prometheus: its scrape jobs switch with the cluster
      'peer-urls',
      'scale-out',
      'close-pd-marks', // marks of killed runs are history once every PD is a verified member
      'clear-evictions', // evict-leader schedulers a killed encrypt / rotate --ca left (their markers name them)
      'record',
      'tiup-meta', // TiUP's meta.yaml only after the record step: only a verified state is written
      'purge-key-backups',
    ]);
  });

  it('with --schedule stop-all stops everything after staging and before the first tier starts', () => {
    const steps = tlsSteps(ctx('on', { schedule: 'stop-all' }));
    const ids = steps.map((s) => s.id);
    expect(ids.slice(ids.indexOf('stage'), ids.indexOf('restart-pd') + 1)).toEqual(['stage', 'stop-all', 'restart-pd']);
    // Re-deciding a finished stop-all on resume would stop tiers that were already started again.
    expect(steps.find((s) => s.id === 'stop-all')!.resume).toBe('skip-if-done');
    expect(ids).not.toContain('restart-overlap');
    // TiUP's Ready wait gates each tier, tiseal's health gate the whole after the last one.
    expect(steps.find((s) => s.id === 'restart-pd')!.title).toMatch(/gated on TiUP's Ready wait/);
  });

  it('with --schedule tiers restarts tier by tier only, each tier gated on health', () => {
    const ids = tlsSteps(ctx('on', { schedule: 'tiers' })).map((s) => s.id);
    expect(ids.slice(ids.indexOf('stage'), ids.indexOf('restart-pd') + 1)).toEqual(['stage', 'restart-pd']);
    expect(tlsSteps(ctx('on', { schedule: 'tiers' })).find((s) => s.id === 'restart-pd')!.title).toMatch(/gated on health$/);
  });

  it('starts the PDs a killed run left stopped first, only when preflight found some (from the hosts)', () => {
    const c = ctx('off');
    expect(tlsSteps(c).map((s) => s.id)).not.toContain('start-pd');
    Object.assign(c, { pdsToStart: topology.instances.filter((i) => i.role === 'pd').slice(0, 1) });
    expect(tlsSteps(c).map((s) => s.id).slice(0, 3)).toEqual(['pd-force-leftovers', 'start-pd', 'save-pd']);
  });

  it('cleans certificates only when disabling with --clean-certificate', () => {
    expect(tlsSteps(ctx('off', { cleanCertificate: true })).map((s) => s.id).slice(-4)).toEqual(['clean-certificates', 'record', 'tiup-meta', 'purge-key-backups']);
    expect(tlsSteps(ctx('on', { cleanCertificate: true })).map((s) => s.id)).not.toContain('clean-certificates');
  });
});
