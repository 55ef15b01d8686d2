import { unavailable } from './unavailable';

export const run = unavailable('tls rotate', 5);
