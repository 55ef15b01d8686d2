/**
 * Thin layer over node-forge's ASN.1 helpers. forge works on "binary strings" (one char per
 * byte); everything outside this file uses Buffers.
 */
import forge from 'node-forge';
import { CertError } from '../errors';

export const asn1 = forge.asn1;
export type Asn1 = forge.asn1.Asn1;
const { Class, Type } = forge.asn1;

export const OID = {
  commonName: '2.5.4.3',
  organizationName: '2.5.4.10',
  rsaEncryption: '1.2.840.113549.1.1.1',
  rsassaPss: '1.2.840.113549.1.1.10',
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  sha384WithRSAEncryption: '1.2.840.113549.1.1.12',
  sha512WithRSAEncryption: '1.2.840.113549.1.1.13',
  ecPublicKey: '1.2.840.10045.2.1',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  ecdsaWithSHA384: '1.2.840.10045.4.3.3',
  ecdsaWithSHA512: '1.2.840.10045.4.3.4',
  ed25519: '1.3.101.112',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

export const toBinary = (buf: Buffer): string => buf.toString('binary');
export const fromBinary = (s: string): Buffer => Buffer.from(s, 'binary');

/** Parse DER without letting forge reinterpret BIT STRING contents (keeps bytes exact). */
export function parseDer(der: Buffer): Asn1 {
  const fromDer = asn1.fromDer as unknown as (b: string, o: object) => Asn1;
  return fromDer(toBinary(der), { strict: true, parseAllBytes: true, decodeBitStrings: false });
}

export function encodeDer(node: Asn1): Buffer {
  return fromBinary(asn1.toDer(node).getBytes());
}

/** Re-embed foreign DER (a Name, an SPKI) in a tree we build; refuse anything that is not canonical DER. */
export function embedDer(der: Buffer, what: string): Asn1 {
  const node = parseDer(der);
  if (!encodeDer(node).equals(der)) {
    throw new CertError(`${what} is not canonical DER`, { suggestion: 'regenerate the certificate or key with a standard tool (openssl)' });
  }
  return node;
}

export const seq = (items: Asn1[]): Asn1 => asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, items);
export const set = (items: Asn1[]): Asn1 => asn1.create(Class.UNIVERSAL, Type.SET, true, items);
export const oid = (dotted: string): Asn1 => asn1.create(Class.UNIVERSAL, Type.OID, false, asn1.oidToDer(dotted).getBytes());
export const nul = (): Asn1 => asn1.create(Class.UNIVERSAL, Type.NULL, false, '');
export const bool = (v: boolean): Asn1 => asn1.create(Class.UNIVERSAL, Type.BOOLEAN, false, v ? '\xff' : '\x00');
export const octets = (b: Buffer): Asn1 => asn1.create(Class.UNIVERSAL, Type.OCTETSTRING, false, toBinary(b));
export const explicit = (tag: number, inner: Asn1): Asn1 => asn1.create(Class.CONTEXT_SPECIFIC, tag, true, [inner]);
export const implicitPrimitive = (tag: number, content: Buffer): Asn1 => asn1.create(Class.CONTEXT_SPECIFIC, tag, false, toBinary(content));

/** INTEGER from unsigned big-endian bytes, minimally encoded (strip leading zeros, pad if the top bit is set). */
export function uintFromBytes(bytes: Buffer): Asn1 {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  let b = bytes.subarray(i);
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return asn1.create(Class.UNIVERSAL, Type.INTEGER, false, toBinary(b));
}

export const smallInt = (n: number): Asn1 => asn1.create(Class.UNIVERSAL, Type.INTEGER, false, asn1.integerToDer(n).getBytes());

/** BIT STRING from whole bytes (signatures, keys): zero unused bits. */
export const bitStringBytes = (b: Buffer): Asn1 => asn1.create(Class.UNIVERSAL, Type.BITSTRING, false, '\x00' + toBinary(b));

/** Named-bit BIT STRING (keyUsage): DER drops trailing zero bits and records how many are unused. */
export function namedBits(bits: number[]): Asn1 {
  if (bits.length === 0) return asn1.create(Class.UNIVERSAL, Type.BITSTRING, false, '\x00');
  const max = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(max / 8) + 1);
  for (const bit of bits) bytes[bit >> 3]! |= 0x80 >> (bit & 7);
  const unused = 7 - (max % 8);
  return asn1.create(Class.UNIVERSAL, Type.BITSTRING, false, String.fromCharCode(unused) + toBinary(bytes));
}

/** Decode named bits back to bit numbers. */
export function readNamedBits(node: Asn1): number[] {
  const v = node.value as string;
  const out: number[] = [];
  for (let i = 1; i < v.length; i++) {
    const byte = v.charCodeAt(i);
    for (let j = 0; j < 8; j++) if (byte & (0x80 >> j)) out.push((i - 1) * 8 + j);
  }
  return out;
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050 on. Whole seconds only. */
export function time(date: Date): Asn1 {
  const d = new Date(Math.floor(date.getTime() / 1000) * 1000);
  const y = d.getUTCFullYear();
  if (y >= 1950 && y < 2050) return asn1.create(Class.UNIVERSAL, Type.UTCTIME, false, asn1.dateToUtcTime(d));
  return asn1.create(Class.UNIVERSAL, Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));
}

export function readTime(node: Asn1): Date {
  const v = node.value as string;
  if (node.type === Type.UTCTIME) return asn1.utcTimeToDate(v);
  if (node.type === Type.GENERALIZEDTIME) return asn1.generalizedTimeToDate(v);
  throw new CertError(`unexpected ASN.1 type ${node.type} where a time was expected`);
}

/** DirectoryString for a Name attribute: PrintableString when the text allows it, else UTF8String (what Go does). */
export function directoryString(text: string): Asn1 {
  if (/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text)) return asn1.create(Class.UNIVERSAL, Type.PRINTABLESTRING, false, text);
  return asn1.create(Class.UNIVERSAL, Type.UTF8, false, forge.util.encodeUtf8(text));
}

export function readString(node: Asn1): string {
  const v = node.value as string;
  switch (node.type) {
    case Type.UTF8:
      return forge.util.decodeUtf8(v);
    case Type.BMPSTRING: {
      let s = '';
      for (let i = 0; i + 1 < v.length; i += 2) s += String.fromCharCode((v.charCodeAt(i) << 8) | v.charCodeAt(i + 1));
      return s;
    }
    default:
      return v; // PrintableString, IA5String, TeletexString (latin-1 close enough for a CN)
  }
}

/** Name = SEQUENCE OF RDN (SET OF {type, value}); we only ever write CN and optionally O. */
export function name(attrs: { commonName: string; organization?: string }): Asn1 {
  const rdn = (type: string, value: string) => set([seq([oid(type), directoryString(value)])]);
  const rdns: Asn1[] = [];
  if (attrs.organization) rdns.push(rdn(OID.organizationName, attrs.organization));
  rdns.push(rdn(OID.commonName, attrs.commonName));
  return seq(rdns);
}

/** The last CN in a Name (the most specific one), or '' when there is none. */
export function readCommonName(nameNode: Asn1): string {
  let cn = '';
  for (const rdn of nameNode.value as Asn1[]) {
    for (const atv of rdn.value as Asn1[]) {
      const [t, v] = atv.value as Asn1[];
      if (t && v && asn1.derToOid(t.value as string) === OID.commonName) cn = readString(v);
    }
  }
  return cn;
}

export const readOid = (node: Asn1): string => asn1.derToOid(node.value as string);

export function pemEncode(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** Every CERTIFICATE block in a PEM bundle, as DER, in order. */
export function pemCertificates(pem: string): Buffer[] {
  const out: Buffer[] = [];
  const re = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;
  for (let m = re.exec(pem); m; m = re.exec(pem)) out.push(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  return out;
}

export const certPem = (der: Buffer): string => pemEncode('CERTIFICATE', der);
