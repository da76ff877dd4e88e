import type { AuditLog } from '../audit/index.ts';
import type { RoutePlugin } from '../api/app.ts';
import { scopedServices } from '../api/scoped-services.ts';
import type { Config } from '../config/index.ts';
import type { Db } from '../db/client.ts';
import { deviceRoutes } from '../devices/device-routes.ts';
import { createDeviceService } from '../devices/device-service.ts';
import { createQuarantineService, ingestRoutes, type Ingest } from '../ingest/index.ts';
import { createPki, pkiRoutes, type LoadedCa, type Pki } from '../provisioning/index.ts';

/**
 * The gateway's routes on the operator API: PKI and enrolment, the device registry, quarantine.
 * Their SQL runs as the API's role in the caller's scope (RLS); their audit goes through the
 * API's audit guard. Shared by the composition root and the role × route test.
 */
export function gatewayRoutes(deps: { pki: Pki; ca: LoadedCa; ingest: Ingest; pkiConfig: Config['pki']; brokerUrl: string; crlUrl: string }) {
  return ({ audit, db }: { audit: AuditLog; db: Db }): RoutePlugin[] => [
    { plugin: pkiRoutes({ pki: deps.pki, ca: deps.ca, scoped: scopedServices(db, (tx) => createPki({ db: tx, ca: deps.ca, audit, config: deps.pkiConfig, brokerUrl: deps.brokerUrl, crlUrl: deps.crlUrl })) }) },
    { plugin: deviceRoutes({ devices: scopedServices(db, (tx) => createDeviceService({ db: tx, audit })) }) },
    { plugin: ingestRoutes({ quarantine: scopedServices(db, (tx) => createQuarantineService({ db: tx, ingest: deps.ingest, audit })) }) },
  ];
}
