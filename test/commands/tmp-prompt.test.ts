import { PassThrough } from 'stream';
import { promptPassword } from '../../src/commands/cert-client';
it('probe', async () => {
  const input = new PassThrough();
  const output = new PassThrough();
  let seen = '';
  output.on('data', (d) => { seen += String(d); });
  const p = promptPassword('Password for x.p12:', { input: input as unknown as NodeJS.ReadStream, output: output as unknown as NodeJS.WriteStream });
  const send = (s: string) => new Promise((r) => setTimeout(() => { input.write(s + '\n'); r(null); }, 50));
  await send(''); await send('s3cret'); await send('other'); await send('s3cret2'); await send('s3cret2');
  const pw = await p;
  console.log(JSON.stringify(pw), JSON.stringify(seen));
});
