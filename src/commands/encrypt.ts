import { unavailable } from './unavailable';

export const enable = unavailable('encrypt enable', 6);
export const disable = unavailable('encrypt disable', 6);
export const rotateKey = unavailable('encrypt rotate-key', 6);
