/** Key types tiseal issues; apart from keys.ts so the CLI's flag parsing loads no crypto library. */

/** `rsa` = RSA 2048 (the default, like TiUP); `ecdsa` = ECDSA on P-256. */
export type KeyType = 'rsa' | 'ecdsa';
export const KEY_TYPES: readonly KeyType[] = ['rsa', 'ecdsa'];
