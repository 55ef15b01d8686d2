/** The sshd harness starts sshd again on another port when its port was taken before sshd bound it. */
import * as net from 'net';
import { freePort, sshdUnavailableReason, startSshd } from './sshdHarness';

const reason = sshdUnavailableReason();
const maybe = reason ? test.skip : test;

maybe('a port taken before sshd binds it: sshd listens on another one', async () => {
  const squatter = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', () => r()));
  const taken = (squatter.address() as net.AddressInfo).port;
  const picks = [taken];
  const sshd = await startSshd({ pickPort: async (a) => picks.shift() ?? freePort(a) });
  try {
    expect(sshd.port).not.toBe(taken);
    expect(sshd.log()).toContain(`Server listening on 127.0.0.1 port ${sshd.port}`);
  } finally {
    await sshd.stop();
    squatter.close();
  }
});
