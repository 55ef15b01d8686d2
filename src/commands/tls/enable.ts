import type { GlobalOptions } from '../../options';
import { runTlsSwitch } from './switch';

export const run = (file: string, flags: Record<string, unknown>, opts: GlobalOptions) => runTlsSwitch('on', file, flags, opts);
