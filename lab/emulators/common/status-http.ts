import * as http from 'http';
import * as https from 'https';
import type * as net from 'net';
import type * as tls from 'tls';
import type { Logger } from './log';
import { listen, peerCommonName, ServerTls } from './tls';

/**
 * A component status port (TiKV 20180, TiDB 10080, TiCDC 8300, TiFlash proxy status): HTTPS
 * when TLS is configured, plain HTTP otherwise. `cnExempt` paths skip the CN check (TiKV: /status,
 * /metrics, /config); every other path needs an allowed CN when an allow-list is set.
 */
export interface StatusServerOptions {
  addr: string;
  tls?: ServerTls;
  allowedCN?: string[];
  /** Paths (`/status`) or method + path (`GET /status`) that skip the CN check. */
  cnExempt?: string[];
  /** Message of the 403 answer on a failed CN check. */
  cnRejectMessage?: string;
  handler: http.RequestListener;
  log: Logger;
}

/** tikv v6.5–v8.5 src/server/status_server/mod.rs: `should_check_cert = !matches!((&method, path), (GET, "/metrics") | (GET, "/status") | (GET, "/config") | (GET, "/debug/pprof/profile"))`. */
export const TIKV_STATUS_CN_EXEMPT = ['GET /metrics', 'GET /status', 'GET /config', 'GET /debug/pprof/profile'];

export async function startStatusServer(o: StatusServerOptions): Promise<net.Server> {
  const guarded: http.RequestListener = (req, res) => {
    if (o.tls && o.allowedCN && o.allowedCN.length) {
      const p = (req.url ?? '/').split('?')[0];
      if (!(o.cnExempt ?? []).some((e) => e === p || e === `${req.method} ${p}`)) {
        const cn = peerCommonName(req.socket as tls.TLSSocket);
        if (!cn || !o.allowedCN.includes(cn)) {
          res.writeHead(403);
          res.end(o.cnRejectMessage ?? 'certificate role error');
          return;
        }
      }
    }
    o.handler(req, res);
  };
  let server: net.Server;
  if (o.tls) {
    const s = https.createServer(o.tls.serverOptions(), guarded);
    s.on('tlsClientError', (e) => o.log.warn('TLS handshake failed on status port', { error: e.message }));
    server = o.tls.attach(s);
  } else {
    server = http.createServer(guarded);
  }
  await listen(server, o.addr);
  return server;
}

export function metricsText(component: string, version: string): string {
  return (
    `# HELP ${component}_emulator_info tiseal emulator build info\n# TYPE ${component}_emulator_info gauge\n` +
    `${component}_emulator_info{version="${version}"} 1\n` +
    `# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\n` +
    `process_start_time_seconds ${Math.floor(Date.now() / 1000 - process.uptime())}\n`
  );
}
