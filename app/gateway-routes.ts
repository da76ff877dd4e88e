import type { AuditLog } from '../audit/index.ts';
import type { RoutePlugin } from '../api/app.ts';
import { scopedServices } from '../api/scoped-services.ts';
import type { Authenticator } from '../auth/principal.ts';
import type { Config } from '../config/index.ts';
import type { AlertService } from '../dashboards/alert-service.ts';
import type { DashboardQueries } from '../dashboards/dashboard-repo.ts';
import { dashboardRoutes } from '../dashboards/dashboard-routes.ts';
import { exportRoutes } from '../dashboards/export-routes.ts';
import type { LiveHub } from '../dashboards/live-hub.ts';
import { dashboardPages } from '../dashboards/page-routes.ts';
import { firmwareRoutes } from '../firmware/firmware-routes.ts';
import type { FirmwareService } from '../firmware/firmware-service.ts';
import type { Db } from '../db/client.ts';
import { deviceRoutes } from '../devices/device-routes.ts';
import { createDeviceService } from '../devices/device-service.ts';
import { createQuarantineService, type Ingest } from '../ingest/index.ts';
import { ingestRoutes } from '../ingest/ingest-routes.ts';
import { createPki, type LoadedCa, type Pki } from '../provisioning/index.ts';
import { pkiRoutes } from '../provisioning/pki-routes.ts';
import { createMrvRepo, createMrvService, type MrvSigner } from '../mrv/index.ts';
import { mrvKeyRoute, mrvRoutes } from '../mrv/mrv-routes.ts';

/**
 * The gateway's routes on the operator API: PKI and enrolment, the device registry, quarantine,
 * dashboards (pages, chart data, alerts, live stream), firmware.
 * Their SQL runs as the API's role in the caller's scope (RLS); their audit goes through the
 * API's audit guard. Shared by the composition root and the role × route test.
 */
export function gatewayRoutes(deps: {
  pki: Pki;
  ca: LoadedCa;
  ingest: Ingest;
  pkiConfig: Config['pki'];
  enrolmentLimits?: Config['enrolment'];
  brokerUrl: string;
  crlUrl: string;
  dashboards: {
    queries: DashboardQueries;
    hub: LiveHub;
    alerts?: Pick<AlertService, 'invalidateRules'>;
    timeZone?: string;
    /**
     * The read pool (DATABASE_READ_URL) for the pages and exports, which only read; as the API's
     * role, so their scope (RLS) holds there too. Absent: the API's pool.
     */
    readDb?: Db;
  };
  firmware?: { service: FirmwareService; maxImageBytes: number };
  /** Carbon MRV: the report signing key (its public half at /.well-known/thamani-mrv-key) and the reports. */
  mrv?: { signer: MrvSigner };
}) {
  return ({
    audit,
    db,
    authenticator,
  }: {
    audit: AuditLog;
    db: Db;
    authenticator: Authenticator;
  }): RoutePlugin[] => [
    {
      plugin: pkiRoutes({
        pki: deps.pki,
        ca: deps.ca,
        scoped: scopedServices(db, (tx) =>
          createPki({
            db: tx,
            ca: deps.ca,
            audit,
            config: deps.pkiConfig,
            brokerUrl: deps.brokerUrl,
            crlUrl: deps.crlUrl,
          }),
        ),
        enrolment: { audit, limits: deps.enrolmentLimits },
      }),
    },
    {
      plugin: deviceRoutes({
        devices: scopedServices(db, (tx) => createDeviceService({ db: tx, audit })),
      }),
    },
    {
      plugin: ingestRoutes({
        quarantine: scopedServices(db, (tx) =>
          createQuarantineService({ db: tx, ingest: deps.ingest, audit }),
        ),
      }),
    },
    {
      plugin: dashboardRoutes({
        db,
        audit,
        authenticator,
        queries: deps.dashboards.queries,
        hub: deps.dashboards.hub,
        alerts: deps.dashboards.alerts,
      }),
    },
    {
      plugin: exportRoutes({
        db: deps.dashboards.readDb ?? db,
        queries: deps.dashboards.queries,
        timeZone: deps.dashboards.timeZone,
      }),
    },
    {
      plugin: dashboardPages({
        db: deps.dashboards.readDb ?? db,
        queries: deps.dashboards.queries,
        timeZone: deps.dashboards.timeZone,
      }),
      root: true,
    },
    ...(deps.firmware
      ? [
          {
            plugin: firmwareRoutes({
              db,
              audit,
              firmware: deps.firmware.service,
              maxImageBytes: deps.firmware.maxImageBytes,
            }),
          },
        ]
      : []),
    ...(deps.mrv ? mrvPlugins(db, audit, deps.mrv.signer) : []),
  ];
}

function mrvPlugins(db: Db, audit: AuditLog, signer: MrvSigner): RoutePlugin[] {
  const service = createMrvService({ db, repo: createMrvRepo(), audit, signer });
  return [
    { plugin: mrvKeyRoute({ signer }), root: true },
    { plugin: mrvRoutes({ mrv: () => service }) },
  ];
}
