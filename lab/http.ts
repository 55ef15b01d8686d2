/** Minimal HTTP client for the lab's health checks (plaintext cluster, lab addresses only). */
import * as http from 'http';

export interface HttpResponse {
  status: number;
  body: string;
}

export function httpRequest(url: string, opts: { method?: string; body?: string; timeoutMs?: number } = {}): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    // agent: false: no keep-alive reuse (a socket the server just closed would fail the request).
    const req = http.request(url, { agent: false, method: opts.method ?? 'GET', timeout: opts.timeoutMs ?? 3000, headers: opts.body ? { 'content-type': 'application/json' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** GET and parse JSON; rejects on non-2xx. Big integer IDs are not used by the lab, so JSON.parse is fine here. */
export async function getJson<T>(url: string, timeoutMs = 3000): Promise<T> {
  const r = await httpRequest(url, { timeoutMs });
  if (r.status < 200 || r.status >= 300) throw new Error(`GET ${url}: HTTP ${r.status} ${r.body.slice(0, 200)}`);
  return JSON.parse(r.body) as T;
}
