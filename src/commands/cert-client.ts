import { unavailable } from './unavailable';

export const run = unavailable('cert client', 5);
