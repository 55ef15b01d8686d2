/** Source positions rebuilt from js-yaml's listener events. */
import { entryOf, itemOf, loadYamlWithPositions, YamlSyntaxError, type PosNode } from '../../src/topology/yaml-positions';

function at(text: string, ...path: Array<string | number>): { line: number; column: number; src: string } {
  const y = loadYamlWithPositions(text);
  let node: PosNode | undefined = y.root;
  for (const step of path) {
    node = typeof step === 'number' ? itemOf(node, step) : entryOf(node, step)?.value;
  }
  if (!node) throw new Error(`no node at ${path.join('.')}`);
  return { ...y.pos(node.start), src: y.source(node) };
}

describe('loadYamlWithPositions', () => {
  const doc = [
    '# leading comment', // 1
    'global:', // 2
    '  user: tidb   # trailing comment', // 3
    'pd_servers:', // 4
    '  # comment before the list', // 5
    '  - host: 10.0.0.1', // 6
    '    config: {a: 1, b: [x, y], c}', // 7
    '  - host: "10.0.0.2"', // 8
    '    client_port:', // 9
    '      2379', // 10
  ].join('\n');

  test.each<[Array<string | number>, number, number, string]>([
    [['global'], 3, 3, 'user: tidb   # trailing comment'],
    [['global', 'user'], 3, 9, 'tidb'],
    [['pd_servers'], 6, 3, ''],
    [['pd_servers', 0], 6, 5, ''],
    [['pd_servers', 0, 'host'], 6, 11, '10.0.0.1'],
    [['pd_servers', 0, 'config'], 7, 13, '{a: 1, b: [x, y], c}'],
    [['pd_servers', 0, 'config', 'b'], 7, 23, '[x, y]'],
    [['pd_servers', 0, 'config', 'b', 1], 7, 27, 'y'],
    [['pd_servers', 1, 'host'], 8, 11, '"10.0.0.2"'],
    [['pd_servers', 1, 'client_port'], 10, 7, '2379'],
  ])('%j is at %i:%i', (path, line, column, src) => {
    const got = at(doc, ...path);
    expect([got.line, got.column]).toEqual([line, column]);
    if (src) expect(got.src).toBe(src);
  });

  test('key positions, a flow key without value, and the loaded data', () => {
    const y = loadYamlWithPositions(doc);
    expect(y.data).toEqual({
      global: { user: 'tidb' },
      pd_servers: [
        { host: '10.0.0.1', config: { a: 1, b: ['x', 'y'], c: null } },
        { host: '10.0.0.2', client_port: 2379 },
      ],
    });
    const cfg = entryOf(itemOf(entryOf(y.root, 'pd_servers')?.value, 0), 'config')!;
    expect(y.pos(cfg.key.start)).toEqual({ line: 7, column: 5 });
    const c = entryOf(cfg.value, 'c')!;
    expect(y.pos(c.key.start)).toEqual({ line: 7, column: 31 });
    expect(c.value).toBeUndefined();
  });

  test('CRLF line endings and a BOM do not shift positions', () => {
    const text = '\ufeffa: 1\r\nb:\r\n  - c: 2\r\n';
    const y = loadYamlWithPositions(text);
    const c = entryOf(itemOf(entryOf(y.root, 'b')?.value, 0), 'c')!;
    expect(y.pos(c.key.start)).toEqual({ line: 3, column: 5 });
    expect(y.pos(c.value!.start)).toEqual({ line: 3, column: 8 });
  });

  test('anchors and merge keys load; the merged mapping keeps its own positions', () => {
    const y = loadYamlWithPositions('base: &b\n  port: 1\nx:\n  <<: *b\n  host: h\n');
    expect(y.data).toEqual({ base: { port: 1 }, x: { port: 1, host: 'h' } });
    expect(y.pos(entryOf(entryOf(y.root, 'x')?.value, 'host')!.value!.start)).toEqual({ line: 5, column: 9 });
  });

  test('syntax errors carry the parser position (1-based)', () => {
    expect(() => loadYamlWithPositions('a: [1, 2\nb: 3\n')).toThrow(YamlSyntaxError);
    try {
      loadYamlWithPositions('a: 1\na: 2\n');
    } catch (e) {
      expect(e).toMatchObject({ reason: 'duplicated mapping key', line: 2, column: 1 });
    }
  });
});
