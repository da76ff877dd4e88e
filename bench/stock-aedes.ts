import { Aedes, type AedesOptions } from 'aedes';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { tlsServerOptions, type BrokerTlsMaterial } from '../broker/tls.ts';

/**
 * The framework's ceiling: stock Aedes 1.2 behind the same mTLS listener options as ours, no
 * hooks, storing nothing. QoS 1 PUBACKs go out as fast as Aedes can write them. With
 * `authorizePublish`, the same broker with that one hook (the bench's commit floor).
 */
export async function startStockAedes(
  material: BrokerTlsMaterial,
  hooks: Pick<AedesOptions, 'authorizePublish'> = {},
  port = 0,
): Promise<{ port: number; close(): Promise<void> }> {
  const aedes = await Aedes.createBroker(hooks);
  const server = tls.createServer(tlsServerOptions(material), (socket) => aedes.handle(socket));
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      // server.close waits for every connection to end: Aedes closes them (a restart with devices on).
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await closed;
    },
  };
}
