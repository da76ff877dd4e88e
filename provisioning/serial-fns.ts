import { randomBytes } from 'node:crypto';

/**
 * Certificate serial numbers, the one place the product makes them. RFC 5280 §4.1.2.2: a
 * positive INTEGER of at most 20 octets; X.690 §8.3.2 (DER): minimally encoded, so the first
 * octet is 0x00 only when the next one has its top bit set. node-forge writes a serial's hex
 * as the INTEGER's content as given (stripping at most one leading 0x00), so a serial that is
 * not already minimal ends up as a certificate OpenSSL refuses ("illegal padding").
 */

/** Octets of randomness in a serial: 126 bits after the two fixed ones (CA/B asks for ≥ 64). */
const SERIAL_OCTETS = 16;

/**
 * A serial from random octets: the first octet is forced into 0x40..0x7f, so the integer is
 * positive, never padded and always exactly as long as its input (no leading-zero case exists).
 */
export function serialHexFromBytes(random: Uint8Array): string {
  if (random.length < 1 || random.length > 20)
    throw new RangeError(`a serial has 1 to 20 octets, not ${random.length}`);
  const bytes = Buffer.from(random);
  bytes[0] = (bytes[0]! & 0x3f) | 0x40;
  return bytes.toString('hex');
}

export function randomSerialHex(): string {
  return serialHexFromBytes(randomBytes(SERIAL_OCTETS));
}

/**
 * The DER content octets (hex) of a non-negative integer given in hex of any length or case,
 * with or without leading zeros: leading zeros dropped, one 0x00 added back when the top bit is
 * set (so it stays positive). For INTEGERs built by hand (the CRL's serials and cRLNumber).
 */
export function derIntegerHex(hex: string): string {
  if (!/^[0-9a-f]+$/i.test(hex))
    throw new TypeError(`not a hexadecimal integer: ${JSON.stringify(hex)}`);
  let h = hex.toLowerCase().replace(/^0+/, '');
  if (h.length % 2) h = `0${h}`;
  if (h === '') return '00';
  return parseInt(h.slice(0, 2), 16) & 0x80 ? `00${h}` : h;
}

/** Whether hex is already the DER content of a certificate serial: positive, minimal, ≤ 20 octets. */
export function isCertificateSerialHex(hex: string): boolean {
  return (
    /^(?:[0-9a-f]{2})+$/i.test(hex) &&
    hex.length <= 40 &&
    derIntegerHex(hex) === hex.toLowerCase() &&
    !/^0+$/.test(hex)
  );
}
