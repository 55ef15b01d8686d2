import { validate } from './json-schema';
import * as schema from '../../docs/tls-status.schema.json';

describe('json-schema subset validator', () => {
  it('accepts a conforming status report and reports each violation with its path', () => {
    const ok = { cluster: 'c', level: 'ok', instances: [{ id: 'pd-2379', role: 'pd', host: 'h', unit: 'pd-2379.service', configured: 'on', caPath: 'a', certPath: 'b', keyPath: 'c', level: 'ok', problems: [], ports: [{ name: 'client_port', port: 2379, live: 'tls', verified: true }] }] };
    expect(validate(schema, ok)).toEqual([]);
    const bad = { cluster: 1, level: 'fine', instances: [{ ...ok.instances[0], ports: [{ name: 'x', port: '2379', live: 'maybe' }] }] };
    expect(validate(schema, bad)).toEqual([
      '$.cluster: expected string, got number',
      '$.level: "fine" not in ["ok","warning","error"]',
      '$.instances[0].ports[0]: missing verified',
      '$.instances[0].ports[0].port: expected number, got string',
      '$.instances[0].ports[0].live: "maybe" not in ["tls","plain","closed"]',
    ]);
  });
});
