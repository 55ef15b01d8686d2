import { main } from '../../src/cli';
import { captureOutput } from './capture';

/** Run the CLI in-process and capture what it prints (stdout, stderr) and its exit code. */
export async function tiseal(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { value: code, out, err } = await captureOutput(() => main(argv));
    return { code, out, err };
  } finally {
    process.exitCode = 0;
  }
}
