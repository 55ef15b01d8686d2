import { parseLosslessJson } from '../../src/util/lossless-json';

describe('parseLosslessJson', () => {
  it('keeps uint64 ids above 2^53 exact (PD member_id, cluster_id)', () => {
    const text = '{"header":{"cluster_id":7299697141183733453},"members":[{"name":"pd-1","member_id":13668033151171901709,"peer_urls":["http://10.0.0.1:2380"]}]}';
    const r = parseLosslessJson<{ header: { cluster_id: string }; members: Array<{ member_id: string; name: string }> }>(text);
    expect(r.header.cluster_id).toBe('7299697141183733453');
    expect(r.members[0].member_id).toBe('13668033151171901709');
    expect(r.members[0].name).toBe('pd-1');
    // what JSON.parse would have done
    expect(String(JSON.parse(text).members[0].member_id)).not.toBe('13668033151171901709');
  });
  it('leaves small numbers, floats, negatives and strings alone', () => {
    expect(parseLosslessJson('{"a":1,"b":-2.5e3,"c":"12345678901234567890","d":[9007199254740991]}')).toEqual({ a: 1, b: -2500, c: '12345678901234567890', d: [9007199254740991] });
  });
  it('does not touch digits inside strings with escapes', () => {
    expect(parseLosslessJson('{"s":"x\\" 99999999999999999999 ","n":99999999999999999999}')).toEqual({ s: 'x" 99999999999999999999 ', n: '99999999999999999999' });
  });
});
