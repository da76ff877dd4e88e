import { BlockList, isIP } from 'node:net';

/**
 * The PROXY protocol, version 2 (HAProxy's "proxy-protocol.txt", §2.2), as HAProxy's
 * `send-proxy-v2` sends it in front of the device's first byte: the address the device
 * connected from, so that the gateway logs, rate-limits and audits the device, not the load
 * balancer. It is believed only from a trusted proxy; from anyone else, a connection is refused
 * (a device cannot claim an address by sending a header itself). Only version 2 is accepted
 * (binary, length-prefixed: nothing to scan for); version 1 (text) and anything malformed are
 * refused. Pure: bytes in, a verdict out; the listener (broker/device-listener.ts) reads.
 */

/** §2.2: the 12-byte signature every v2 header starts with. */
export const PROXY_V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
const FIXED = 16;
/**
 * Address block plus TLVs. HAProxy sends 12 (IPv4) or 36 (IPv6) bytes plus the TLVs it is told to
 * add (a few hundred at most); anything longer is not a header we asked for.
 */
export const MAX_PROXY_PAYLOAD = 1024;

export interface ProxyPeer {
  address: string;
  port: number;
}

export type ProxyVerdict =
  /** More bytes are needed before anything can be said. */
  | { kind: 'incomplete' }
  | { kind: 'invalid'; reason: string }
  /** `peer` undefined: a LOCAL command (the proxy's own health check) or an address family not
   * carried (UNSPEC): the connection's own address stands. */
  | { kind: 'ok'; consumed: number; peer: ProxyPeer | undefined };

const ipv6 = (b: Buffer, at: number): string => {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(at + i).toString(16));
  // Node's own spelling (compressed), so that addresses compare equal to socket.remoteAddress.
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
};

/** Reads a v2 header at the start of `buf` (which may hold the device's first bytes after it). */
export function parseProxyV2(buf: Buffer): ProxyVerdict {
  const sig = Math.min(buf.length, PROXY_V2_SIGNATURE.length);
  if (!buf.subarray(0, sig).equals(PROXY_V2_SIGNATURE.subarray(0, sig)))
    return { kind: 'invalid', reason: 'not a PROXY v2 signature' };
  if (buf.length < FIXED) return { kind: 'incomplete' };
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return { kind: 'invalid', reason: 'PROXY version is not 2' };
  const command = verCmd & 0x0f;
  if (command > 1) return { kind: 'invalid', reason: 'unknown PROXY command' };
  const famProto = buf[13]!;
  const family = famProto >> 4;
  const protocol = famProto & 0x0f;
  const length = buf.readUInt16BE(14);
  if (length > MAX_PROXY_PAYLOAD) return { kind: 'invalid', reason: 'PROXY header too long' };
  if (buf.length < FIXED + length) return { kind: 'incomplete' };
  const consumed = FIXED + length;
  // §2.2: a receiver must accept LOCAL and ignore the address block.
  if (command === 0) return { kind: 'ok', consumed, peer: undefined };
  if (family > 3 || protocol > 2)
    return { kind: 'invalid', reason: 'unknown address family or protocol' };
  if (family === 0) return { kind: 'ok', consumed, peer: undefined };
  if (protocol !== 1) return { kind: 'invalid', reason: 'not a TCP (STREAM) connection' };
  if (family === 1) {
    if (length < 12) return { kind: 'invalid', reason: 'IPv4 address block too short' };
    const address = [...buf.subarray(FIXED, FIXED + 4)].join('.');
    return { kind: 'ok', consumed, peer: { address, port: buf.readUInt16BE(FIXED + 8) } };
  }
  if (family === 2) {
    if (length < 36) return { kind: 'invalid', reason: 'IPv6 address block too short' };
    return {
      kind: 'ok',
      consumed,
      peer: { address: ipv6(buf, FIXED), port: buf.readUInt16BE(FIXED + 32) },
    };
  }
  return { kind: 'invalid', reason: 'UNIX socket addresses are not carried' };
}

/** A v2 PROXY header (HAProxy's encoding): for tests, the fuzzer and the bench. */
export function encodeProxyV2(
  source: ProxyPeer,
  dest: ProxyPeer,
  o: { tlv?: Buffer; command?: 'proxy' | 'local' } = {},
): Buffer {
  const v6 = isIP(source.address) === 6;
  const block = Buffer.alloc(v6 ? 36 : 12);
  const put = (address: string, at: number): void => {
    if (!v6) address.split('.').forEach((o, i) => (block[at + i] = Number(o)));
    else {
      const [head = '', tail = ''] = address.split('::');
      const h = head ? head.split(':') : [];
      const t = address.includes('::') && tail ? tail.split(':') : [];
      const groups = address.includes('::')
        ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t]
        : h;
      groups.forEach((g, i) => block.writeUInt16BE(parseInt(g, 16), at + 2 * i));
    }
  };
  put(source.address, 0);
  put(dest.address, v6 ? 16 : 4);
  block.writeUInt16BE(source.port, v6 ? 32 : 8);
  block.writeUInt16BE(dest.port, v6 ? 34 : 10);
  const tlv = o.tlv ?? Buffer.alloc(0);
  const head = Buffer.alloc(4);
  head[0] = o.command === 'local' ? 0x20 : 0x21;
  head[1] = v6 ? 0x21 : 0x11;
  head.writeUInt16BE(block.length + tlv.length, 2);
  return Buffer.concat([PROXY_V2_SIGNATURE, head, block, tlv]);
}

/** MQTT_TRUSTED_PROXIES (IPs and CIDRs) as one matcher; IPv4-mapped IPv6 counts as IPv4. */
export function trustedProxies(
  entries: readonly string[],
): (address: string | undefined) => boolean {
  const list = new BlockList();
  for (const e of entries) {
    const [address = '', bits] = e.split('/');
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return (address) => {
    if (!address) return false;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    const a = mapped ? mapped[1]! : address;
    const family = isIP(a);
    return family !== 0 && list.check(a, family === 6 ? 'ipv6' : 'ipv4');
  };
}
