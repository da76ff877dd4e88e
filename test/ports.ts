import net from 'node:net';

/** Ports this process has handed out: the OS may offer a just-closed port again at once. */
const handedOut = new Set<number>();

/**
 * A loopback port free now and never handed out before by this process, so that several drawn
 * in a row for one child (MQTT, HTTPS, redirect, device HTTPS) always differ.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}
