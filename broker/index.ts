export {
  createBroker,
  type Broker,
  type BrokerConfig,
  type BrokerDeps,
  type BrokerRoutes,
  type ConnectedClient,
  type DeviceEventSource,
} from './broker-service.ts';
export { createPresence, type Presence } from './presence.ts';
export { connectClusterStore, type ClusterStore } from './cluster.ts';
export type { ConnectionIdentity } from './identity-fns.ts';
export { normaliseSerial, normaliseFingerprint } from './identity-fns.ts';
export { addressKey } from './admission.ts';
export { loadOrCreateTicketKeys, type BrokerTlsMaterial } from './tls.ts';
export * from './types.ts';
