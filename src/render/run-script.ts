/** scripts/run_<role>.sh exactly as TiUP writes them (embed/templates/scripts/run_*.sh.tpl). */
import { TisealError } from '../errors';
import type { Instance, Topology } from '../topology/types';
import {
  joinHostPort,
  listenHostOf,
  pdAdvertiseClientUrl,
  pdAdvertisePeerUrl,
  pdHostPorts,
  pdInitialCluster,
  pdInstances,
  pdName,
  portOf,
  schemeOf,
} from './addresses';
import { renderFile, TemplateVars } from './template';

export interface RunScriptOptions {
  /** Render for a TLS-enabled cluster (https PD URLs for PD, CDC, Pump and Drainer; CDC cert flags). */
  tls: boolean;
  /** PD only: `initial` uses --initial-cluster (deploy), `join` uses --join (scale-out). Default initial. */
  pdMode?: 'initial' | 'join';
  /** PD join targets (client URLs of the running PDs). Default: every other PD's advertise client URL. */
  joinUrls?: string[];
}

/** Value inside "…" in bash: only \, ", $ and ` are special there. */
export function bashDq(v: string | number): string {
  return String(v).replace(/[\\"$`]/g, (c) => `\\${c}`);
}

/** Unquoted word in bash (TiUP writes DEPLOY_DIR=<path> bare): quote only when needed. */
export function bashWord(v: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

function requireDataDir(inst: Instance): string {
  if (!inst.dataDir) throw new TisealError(`${inst.role} ${inst.host}:${inst.port} has no data_dir`);
  return inst.dataDir;
}

/**
 * numactl arguments stand bare in TiUP's templates (`--cpunodebind={{.NumaNode}}`): the topology
 * model admits only numactl lists, and bashWord quotes anything else, so no value runs as code.
 */
function numa(inst: Instance): TemplateVars {
  const cores = inst.raw?.numa_cores;
  return { numaNode: inst.numaNode ? bashWord(inst.numaNode) : '', numaCores: typeof cores === 'string' && cores !== '' && inst.numaNode ? bashWord(cores) : '' };
}

function pdVars(inst: Instance, topo: Topology, opts: RunScriptOptions): TemplateVars {
  const listen = listenHostOf(inst, topo);
  const scheme = schemeOf(opts.tls);
  // Like TiUP's scale-out script: join the advertise client URLs of the cluster's other PDs.
  let join = '';
  if (opts.pdMode === 'join') {
    const urls = opts.joinUrls ?? pdInstances(topo).filter((p) => !(p.host === inst.host && p.port === inst.port)).map((p) => pdAdvertiseClientUrl(p, opts.tls));
    if (urls.length === 0) throw new TisealError(`PD ${inst.host}:${inst.port}: --join needs at least one other PD`);
    join = urls.join(',');
  }
  return {
    ...numa(inst),
    deployDir: bashWord(inst.deployDir),
    name: bashDq(pdName(inst)),
    clientUrl: bashDq(`${scheme}://${joinHostPort(listen, portOf(inst, 'client_port', 2379))}`),
    advertiseClientUrl: bashDq(pdAdvertiseClientUrl(inst, opts.tls)),
    peerUrl: bashDq(`${scheme}://${joinHostPort(listen, portOf(inst, 'peer_port', 2380))}`),
    advertisePeerUrl: bashDq(pdAdvertisePeerUrl(inst, opts.tls)),
    dataDir: bashDq(requireDataDir(inst)),
    join: bashDq(join),
    initialCluster: bashDq(pdInitialCluster(topo, opts.tls)),
    logDir: bashDq(inst.logDir),
    // TiUP pd.go: MSMode is `global.pd_mode == "ms"` (PD microservices), not the presence of tso/scheduling servers.
    msMode: topo.global.pdMode === 'ms',
  };
}

function tikvVars(inst: Instance, topo: Topology): TemplateVars {
  const listen = listenHostOf(inst, topo);
  const port = portOf(inst, 'port', 20160);
  const status = portOf(inst, 'status_port', 20180);
  return {
    ...numa(inst),
    deployDir: bashDq(inst.deployDir),
    addr: bashDq(joinHostPort(listen, port)),
    advertiseAddr: bashDq(inst.advertise?.advertise_addr || joinHostPort(inst.host, port)),
    statusAddr: bashDq(joinHostPort(listen, status)),
    advertiseStatusAddr: bashDq(inst.advertise?.advertise_status_addr || joinHostPort(inst.host, status)),
    // TiKV takes host:port and strips any scheme itself: unchanged by TLS.
    pd: bashDq(pdHostPorts(topo).join(',')),
    dataDir: bashDq(requireDataDir(inst)),
    logDir: bashDq(inst.logDir),
  };
}

function tidbVars(inst: Instance, topo: Topology): TemplateVars {
  return {
    ...numa(inst),
    deployDir: bashWord(inst.deployDir),
    port: portOf(inst, 'port', 4000),
    statusPort: portOf(inst, 'status_port', 10080),
    listenHost: bashDq(listenHostOf(inst, topo)),
    advertiseAddr: bashDq(inst.advertise?.advertise_address || inst.host),
    // --path stays host:port,… with or without TLS.
    pd: bashDq(pdHostPorts(topo).join(',')),
    logDir: bashDq(inst.logDir),
  };
}

function tiflashVars(inst: Instance): TemplateVars {
  // TiUP writes LD_LIBRARY_PATH=<deploy>/bin/tiflash unquoted: quote only when the path needs it.
  return { ...numa(inst), deployDir: bashDq(inst.deployDir), libraryDir: bashWord(`${inst.deployDir}/bin/tiflash`), logDir: bashDq(inst.logDir) };
}

function cdcVars(inst: Instance, topo: Topology, opts: RunScriptOptions): TemplateVars {
  const port = portOf(inst, 'port', 8300);
  const gcTtl = inst.raw?.['gc-ttl'];
  const tz = inst.raw?.tz;
  const clusterId = inst.raw?.ticdc_cluster_id;
  return {
    ...numa(inst),
    deployDir: bashWord(inst.deployDir),
    addr: bashDq(joinHostPort(listenHostOf(inst, topo), port)),
    advertiseAddr: bashDq(joinHostPort(inst.host, port)),
    // CDC refuses a scheme that does not match its TLS settings, both ways.
    // TiUP cdc.go: pdspec.GetAdvertiseClientURL(enableTLS) per PD (advertise_client_addr verbatim).
    pd: bashDq(pdInstances(topo).map((p) => pdAdvertiseClientUrl(p, opts.tls)).join(',')),
    dataDir: inst.dataDir ? bashDq(inst.dataDir) : '',
    tls: opts.tls,
    gcTtl: typeof gcTtl === 'number' && gcTtl > 0 ? gcTtl : '',
    tz: typeof tz === 'string' ? bashDq(tz) : '',
    // Bare in TiUP's template (`--cluster-id {{.ClusterID}}`): a word, quoted when it is not plain.
    clusterId: typeof clusterId === 'string' && clusterId ? bashWord(clusterId) : '',
    logDir: bashDq(inst.logDir),
  };
}

/**
 * TiUP pump.go / drainer.go InitConfig: --node-id is host:port, --pd-urls the PDs' advertise client
 * URLs with the scheme of the cluster's TLS (Pump and Drainer dial PD's etcd with clientv3, which
 * speaks TLS only to an https:// endpoint). Pump listens on the listen host and advertises its host;
 * Drainer's --addr is its host (TiUP passes no --advertise-addr).
 */
function binlogVars(inst: Instance, topo: Topology, opts: RunScriptOptions): TemplateVars {
  const port = portOf(inst, 'port', inst.role === 'pump' ? 8250 : 8249);
  const self = joinHostPort(inst.host, port);
  return {
    numaNode: inst.numaNode ? bashWord(inst.numaNode) : '',
    deployDir: bashWord(inst.deployDir),
    nodeId: bashDq(self),
    addr: bashDq(inst.role === 'pump' ? joinHostPort(listenHostOf(inst, topo), port) : self),
    advertiseAddr: bashDq(self),
    pd: bashDq(pdInstances(topo).map((p) => pdAdvertiseClientUrl(p, opts.tls)).join(',')),
    dataDir: bashDq(requireDataDir(inst)),
    logDir: bashDq(inst.logDir),
  };
}

/** The run script of one instance (bash text, TiUP's layout and flags). */
export function renderRunScript(inst: Instance, topo: Topology, opts: RunScriptOptions): string {
  switch (inst.role) {
    case 'pd':
      return renderFile('run_pd.sh.tpl', pdVars(inst, topo, opts));
    case 'tikv':
      return renderFile('run_tikv.sh.tpl', tikvVars(inst, topo));
    case 'tidb':
      return renderFile('run_tidb.sh.tpl', tidbVars(inst, topo));
    case 'tiflash':
      return renderFile('run_tiflash.sh.tpl', tiflashVars(inst));
    case 'cdc':
      return renderFile('run_cdc.sh.tpl', cdcVars(inst, topo, opts));
    case 'pump':
      return renderFile('run_pump.sh.tpl', binlogVars(inst, topo, opts));
    case 'drainer':
      return renderFile('run_drainer.sh.tpl', binlogVars(inst, topo, opts));
    default:
      throw new TisealError(`no run script template for role ${inst.role}`, { suggestion: 'tiseal renders run scripts for pd, tikv, tidb, tiflash, cdc, pump and drainer' });
  }
}
