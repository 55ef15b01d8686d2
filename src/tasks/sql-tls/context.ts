import type { KeyType } from '../../pki';
import type { SqlCredentials } from '../../sql/session';
import type { Instance } from '../../topology/types';
import type { TlsContext } from '../context';

export interface SqlTlsFlags {
  /** Operator's own CA bundle (what sql-ca.crt holds), server certificate and key. */
  caCert?: string;
  cert?: string;
  key?: string;
  extraSan?: string[];
  tlsVersion?: string;
  certDays: number;
  caDays: number;
  /** --key-type; undefined: new keys RSA, a replaced certificate keeps its type. */
  keyType?: KeyType;
}

/** One `sql-tls enable|disable` run: the cluster context (SSH pool, PD, facts) plus the SQL side. */
export interface SqlTlsContext extends TlsContext {
  sql: {
    want: 'on' | 'off';
    flags: SqlTlsFlags;
    creds: SqlCredentials;
    /** Whether the components run cluster TLS (health checks of the status port need the client certificate). */
    clusterTls: boolean;
    /** require_secure_transport as read live this run (src/tasks/sql-tls/require.ts clusterRequire). */
    requireOn?: boolean;
    /** SQL CA bundle written as tls/sql-ca.crt (set by the SQL certificates step). */
    caPem?: string;
    /** tiseal issued the server certificates: the gate then also checks that they name the host. */
    issued?: boolean;
    leafGood?: (inst: Instance, certPem: string, keyPem: string) => boolean;
    /** `keepSans`: names of the certificate being replaced (rotate keeps e.g. the load balancer's name); `current`: that certificate. */
    leafFor?: (inst: Instance, keepSans?: string[], current?: string) => Promise<{ certPem: string; keyPem: string }>;
  };
}

export const tidbInstances = (ctx: Pick<TlsContext, 'topology'>) => ctx.topology.instances.filter((i) => i.role === 'tidb');
export const mysqlPort = (inst: Instance) => inst.ports.port ?? 4000;
