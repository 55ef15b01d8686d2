import { unavailable } from './unavailable';

export const run = unavailable('audit', 6);
