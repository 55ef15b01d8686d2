import * as TOML from '@iarna/toml';
import { foldMap, mergeConfig, renderTemplate, stringifyToml, TemplateError } from '../../src/render';

describe('template', () => {
  test('variables and conditionals; standalone block lines vanish', () => {
    const tpl = ['a={{x}}', '{{#if flag}}', 'yes {{x}}', '{{else}}', 'no', '{{/if}}', '{{#unless flag}}', 'unless', '{{/unless}}', 'end', ''].join('\n');
    expect(renderTemplate(tpl, { x: 1, flag: true })).toBe('a=1\nyes 1\nend\n');
    expect(renderTemplate(tpl, { x: 'q', flag: '' })).toBe('a=q\nno\nunless\nend\n');
  });

  test('inline blocks and nesting', () => {
    expect(renderTemplate('[{{#if a}}A{{#if b}}B{{/if}}{{/if}}]', { a: 1, b: 0 })).toBe('[A]');
    expect(renderTemplate('[{{#if a}}A{{#if b}}B{{/if}}{{/if}}]', { a: 1, b: 1 })).toBe('[AB]');
  });

  test('undefined variables and unbalanced blocks fail loudly', () => {
    expect(() => renderTemplate('{{nope}}', {})).toThrow(TemplateError);
    expect(() => renderTemplate('{{#if a}}x', { a: 1 })).toThrow(/never closed/);
    expect(() => renderTemplate('x{{/if}}', {})).toThrow(/unexpected/);
    expect(() => renderTemplate('{{#if a}}{{/unless}}', {})).toThrow(/unexpected/);
  });
});

describe('TiUP config merge', () => {
  test('FoldMap nests dotted keys, also inside nested maps', () => {
    expect(foldMap({ 'a.b.c': 1, a: { 'b.d': 2 }, e: 3 })).toEqual({ a: { b: { c: 1, d: 2 } }, e: 3 });
  });

  test('later maps win; inputs are not mutated', () => {
    const base = { 'x.y': 1, z: { w: 1 } };
    const over = { x: { y: 2 }, 'z.v': 3 };
    expect(mergeConfig(base, over)).toEqual({ x: { y: 2 }, z: { w: 1, v: 3 } });
    expect(base).toEqual({ 'x.y': 1, z: { w: 1 } });
  });

  test('a scalar replaces a table and vice versa', () => {
    expect(mergeConfig({ a: { b: 1 } }, { a: 5 })).toEqual({ a: 5 });
    expect(mergeConfig({ a: 5 }, { 'a.b': 1 })).toEqual({ a: { b: 1 } });
  });
});

describe('TOML writer (checked by an independent parser)', () => {
  test('round trip of awkward values', () => {
    const v = {
      s: 'quote " back \\ tab \t nl \n del \u007f ctl \u0001 unicode ✓',
      'key with space': 1,
      n: -3,
      f: 0.25,
      big: 5368709120,
      yes: true,
      arr: [1, 2, 3],
      strs: ['a', 'b"c'],
      nested: { deeper: { x: 'y' }, 'dot.key': 'v' },
      tables: [{ key: 'dc', value: 'sha' }, { key: 'zone', value: 'bj' }],
    };
    const text = stringifyToml(v);
    expect(JSON.parse(JSON.stringify(TOML.parse(text)))).toEqual(v);
  });

  test('sorted keys, values before tables, no empty intermediate headers', () => {
    expect(stringifyToml({ b: 1, a: { c: { d: 1 } }, 0: 'z' })).toBe('0 = "z"\nb = 1\n\n[a.c]\nd = 1\n');
  });

  test('null values are left out; unsupported values are refused', () => {
    expect(stringifyToml({ a: null, b: undefined, c: 1 })).toBe('c = 1\n');
    expect(() => stringifyToml({ f: () => 1 })).toThrow(/cannot write f/);
  });
});
