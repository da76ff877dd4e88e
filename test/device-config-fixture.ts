import { createAuditLog } from '../audit/index.ts';
import type { Broker } from '../broker/index.ts';
import { createDeviceConfigRuntime, type DeviceConfigRuntime } from '../device-config/index.ts';
import { testAuditSigner } from './audit-key.ts';
import { startBrokerFixture, type BrokerFixture } from './broker-fixture.ts';
import { testLogger } from './db.ts';

/**
 * The real broker (mTLS, topic policy, ingest) on a real PostgreSQL, with the device
 * configuration and command runtime wired as `thamani start` wires it: delivery on subscribe,
 * and a command marked sent only when the broker saw it delivered. `onBroker` sees the broker
 * before any device connects (e.g. to watch what it publishes).
 */
export async function startDeviceConfigFixture(
  o: { onBroker?: (broker: Broker) => void } = {},
): Promise<{ f: BrokerFixture; rt: DeviceConfigRuntime; close(): Promise<void> }> {
  let rt: DeviceConfigRuntime | undefined;
  const f = await startBrokerFixture(
    {},
    {
      ingest: {},
      routes: ({ broker, events, t }) => {
        const runtime = createDeviceConfigRuntime({
          db: t.database.db,
          audit: createAuditLog({ db: t.database.db, signer: testAuditSigner }),
          publisher: broker.publisher,
          events,
          logger: testLogger,
        });
        rt = runtime;
        o.onBroker?.(broker);
        return {
          handlers: runtime.handlers,
          onSubscribed: (id, s) => runtime.delivery.onSubscribed(id, s),
          onDelivered: (id, s, p) => runtime.delivery.onDelivered(id, s, p),
        };
      },
    },
  );
  const runtime = rt!;
  return {
    f,
    rt: runtime,
    async close() {
      runtime.stop();
      await f.close();
    },
  };
}
