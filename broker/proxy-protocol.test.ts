import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeProxyV2,
  MAX_PROXY_PAYLOAD,
  parseProxyV2,
  PROXY_V2_SIGNATURE,
  trustedProxies,
} from './proxy-protocol.ts';

const ipv4 = fc.ipV4();
// Node's spelling of an IPv6 address (what socket.remoteAddress shows), compressed.
const ipv6 = fc
  .array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 })
  .map((g) => new URL(`http://[${g.map((x) => x.toString(16)).join(':')}]`).hostname.slice(1, -1));
const port = fc.integer({ min: 0, max: 65_535 });
const peer = (address: fc.Arbitrary<string>) => fc.record({ address, port });
const tlv = fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b));
const tail = fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b));

describe('PROXY protocol v2 header parser', () => {
  it('never throws on any bytes, and what it consumes is within what it was given', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
        const v = parseProxyV2(Buffer.from(bytes));
        expect(['incomplete', 'invalid', 'ok']).toContain(v.kind);
        if (v.kind === 'ok') expect(v.consumed).toBeLessThanOrEqual(bytes.length);
      }),
      { numRuns: 5000 },
    );
  });

  it('never throws on bytes behind a valid signature (the fields a fuzzer would reach last)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1200 }), (bytes) => {
        const buf = Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from(bytes)]);
        const v = parseProxyV2(buf);
        if (v.kind === 'ok') {
          expect(v.consumed).toBe(16 + buf.readUInt16BE(14));
          expect(v.consumed).toBeLessThanOrEqual(buf.length);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('reads the exact source of any well-formed header (IPv4 and IPv6, TLVs, bytes after it)', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.tuple(peer(ipv4), peer(ipv4)), fc.tuple(peer(ipv6), peer(ipv6))),
        tlv,
        tail,
        ([src, dst], t, rest) => {
          const header = encodeProxyV2(src, dst, { tlv: t });
          const v = parseProxyV2(Buffer.concat([header, rest]));
          expect(v).toEqual({ kind: 'ok', consumed: header.length, peer: src });
        },
      ),
    );
  });

  it('says "incomplete" for every proper prefix of a well-formed header, never ok or invalid', () => {
    fc.assert(
      fc.property(peer(ipv4), peer(ipv4), tlv, fc.nat(), (src, dst, t, cut) => {
        const header = encodeProxyV2(src, dst, { tlv: t });
        expect(parseProxyV2(header.subarray(0, cut % header.length))).toEqual({
          kind: 'incomplete',
        });
      }),
    );
  });

  it('refuses any header whose signature, version or command is changed', () => {
    fc.assert(
      fc.property(
        peer(ipv4),
        peer(ipv4),
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 1, max: 255 }),
        (src, dst, at, flip) => {
          const header = encodeProxyV2(src, dst);
          header[at] = header[at]! ^ flip;
          // Byte 12 low nibble 0 is LOCAL (valid, no address); any other change is refused.
          if (at === 12 && header[12] === 0x20) return;
          expect(parseProxyV2(header).kind).toBe('invalid');
        },
      ),
    );
  });

  it('refuses version 1 (text), UNIX and datagram headers, and over-long ones', () => {
    expect(parseProxyV2(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n')).kind).toBe('invalid');
    const h = encodeProxyV2({ address: '10.0.0.1', port: 1 }, { address: '10.0.0.2', port: 2 });
    const unix = Buffer.from(h);
    unix[13] = 0x31;
    expect(parseProxyV2(unix).kind).toBe('invalid');
    const dgram = Buffer.from(h);
    dgram[13] = 0x12;
    expect(parseProxyV2(dgram).kind).toBe('invalid');
    const long = Buffer.from(h);
    long.writeUInt16BE(MAX_PROXY_PAYLOAD + 1, 14);
    expect(parseProxyV2(long).kind).toBe('invalid');
    const short = Buffer.from(h);
    short.writeUInt16BE(4, 14);
    expect(parseProxyV2(short).kind).toBe('invalid');
  });

  it('accepts LOCAL (the proxy speaking for itself) without an address', () => {
    const h = encodeProxyV2(
      { address: '10.0.0.1', port: 1 },
      { address: '10.0.0.2', port: 2 },
      { command: 'local' },
    );
    expect(parseProxyV2(h)).toEqual({ kind: 'ok', consumed: h.length, peer: undefined });
  });
});

describe('trusted proxies', () => {
  it('matches addresses and CIDRs, IPv4-mapped IPv6 as IPv4, and nothing else', () => {
    const trusted = trustedProxies(['127.0.0.1', '10.1.0.0/16', 'fd00::/8']);
    expect(trusted('127.0.0.1')).toBe(true);
    expect(trusted('::ffff:127.0.0.1')).toBe(true);
    expect(trusted('10.1.200.3')).toBe(true);
    expect(trusted('fd12::1')).toBe(true);
    expect(trusted('127.0.0.2')).toBe(false);
    expect(trusted('10.2.0.1')).toBe(false);
    expect(trusted(undefined)).toBe(false);
    expect(trusted('not an address')).toBe(false);
  });
});
