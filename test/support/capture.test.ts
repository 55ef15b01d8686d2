import { captureOutput } from './capture';

describe('captureOutput', () => {
  it('captures the writes of the call, including those after awaits and timers', async () => {
    const r = await captureOutput(async () => {
      process.stdout.write('a');
      await new Promise((res) => setTimeout(res, 5));
      process.stderr.write(Buffer.from('b'));
      process.stdout.write('c\n');
      return 7;
    });
    expect(r).toEqual({ value: 7, out: 'ac\n', err: 'b' });
  });

  it('a call still running after its capture returned never writes into another capture', async () => {
    let release!: () => void;
    const late = new Promise<void>((r) => (release = r));
    // The first call returns while work it started keeps going (as a test that timed out does).
    const first = await captureOutput(() => {
      void late.then(() => process.stdout.write('late line from the first call\n'));
      process.stdout.write('first\n');
    });
    const second = await captureOutput(async () => {
      process.stdout.write('{"second": true}\n');
      release();
      await new Promise((r) => setTimeout(r, 10));
    });
    expect(first.out).toBe('first\n');
    expect(second.out).toBe('{"second": true}\n');
    expect(JSON.parse(second.out)).toEqual({ second: true });
  });

  it('two captures at once each get their own lines', async () => {
    const tick = () => new Promise((r) => setTimeout(r, 1));
    const run = (name: string) => captureOutput(async () => {
      for (let i = 0; i < 5; i++) {
        process.stdout.write(`${name}${i}\n`);
        await tick();
      }
    });
    const [a, b] = await Promise.all([run('a'), run('b')]);
    expect(a.out).toBe('a0\na1\na2\na3\na4\n');
    expect(b.out).toBe('b0\nb1\nb2\nb3\nb4\n');
  });
});
