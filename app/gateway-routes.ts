import type { AuditLog } from '../audit/index.ts';
import type { RoutePlugin } from '../api/app.ts';
import { scopedServices } from '../api/scoped-services.ts';
import type { Authenticator } from '../auth/principal.ts';
import type { Config } from '../config/index.ts';
import type { RulesChangedSink } from '../dashboards/alert-service.ts';
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
import { createCommandService, createDeviceConfigService } from '../device-config/index.ts';
import { deviceConfigRoutes } from '../device-config/config-routes.ts';
import { createMrvRepo, createMrvService, type MrvSigner } from '../mrv/index.ts';
import { mrvKeyRoute, mrvRoutes } from '../mrv/mrv-routes.ts';
import { verifierRoutes } from '../mrv/verifier-routes.ts';
import { verifierAdminRoutes } from '../mrv/verifier-admin-routes.ts';
import { createVerifierRepo } from '../mrv/verifier-repo.ts';
import { createVerifierAdmin } from '../mrv/verifier-service.ts';
import { notificationRoutes } from '../notifications/notification-routes.ts';
import { settingsPage } from '../notifications/settings-routes.ts';
import { DEFAULT_TIME_ZONE } from '../dashboards/format-fns.ts';
import { fieldServiceMaker } from '../field/index.ts';
import { digesterFeedSection, FIELD_SCRIPT, fieldPages } from '../field/field-page-routes.ts';
import { fieldRoutes } from '../field/field-routes.ts';
import type { ScopedServices } from '../api/scoped-services.ts';
import type { UserService } from '../auth/user-service.ts';
import { technicianAdminRoutes } from '../dashboards/technician-admin-routes.ts';
import { technicianFirmwareRoutes } from '../dashboards/technician-firmware-routes.ts';
import { technicianRoutes } from '../dashboards/technician-routes.ts';

/**
 * The gateway's routes on the operator API: PKI and enrolment, the device registry, remote
 * configuration and commands, quarantine,
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
    alerts?: RulesChangedSink;
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
    users,
  }: {
    audit: AuditLog;
    db: Db;
    authenticator: Authenticator;
    users?: ScopedServices<UserService>;
  }): RoutePlugin[] => {
    const pkiFor = (tx: Db) =>
      createPki({
        db: tx,
        ca: deps.ca,
        audit,
        config: deps.pkiConfig,
        brokerUrl: deps.brokerUrl,
        crlUrl: deps.crlUrl,
      });
    const timeZone = deps.dashboards.timeZone ?? DEFAULT_TIME_ZONE;
    const makeField = fieldServiceMaker({ audit, queries: deps.dashboards.queries, timeZone });
    const field = scopedServices(db, makeField);
    return [
      {
        plugin: pkiRoutes({
          pki: deps.pki,
          ca: deps.ca,
          scoped: scopedServices(db, pkiFor),
          enrolment: { audit, limits: deps.enrolmentLimits },
        }),
      },
      {
        plugin: deviceRoutes({
          devices: scopedServices(db, (tx) => createDeviceService({ db: tx, audit })),
        }),
      },
      {
        plugin: deviceConfigRoutes({
          services: scopedServices(db, (tx) => ({
            config: createDeviceConfigService({ db: tx, audit }),
            commands: createCommandService({ db: tx, audit }),
          })),
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
          digesterSections: [{ render: digesterFeedSection(makeField), scripts: [FIELD_SCRIPT] }],
          collectionOrder: async (tx) =>
            (await makeField(tx).needsCollection()).points.map((p) => p.unitId),
        }),
        root: true,
      },
      // Field records (field/): the feeding log, collections, the needs-collection list.
      { plugin: fieldRoutes({ field, timeZone }) },
      { plugin: fieldPages({ field, timeZone }), root: true },
      // Notifications (notifications/): each user's channels, quiet hours and deliveries.
      { plugin: notificationRoutes({ db, audit }) },
      { plugin: settingsPage({ db, audit, timeZone }), root: true },
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
      // The technician's and administrator's pages (issue 19): the same services as the routes above.
      {
        plugin: technicianRoutes({
          db,
          audit,
          queries: deps.dashboards.queries,
          pki: deps.pki,
          pkiFor,
          ingest: deps.ingest,
          timeZone,
        }),
        root: true,
      },
      {
        plugin: technicianAdminRoutes({
          db,
          audit,
          queries: deps.dashboards.queries,
          hub: deps.dashboards.hub,
          alerts: deps.dashboards.alerts,
          users,
          timeZone,
        }),
        root: true,
      },
      ...(deps.firmware
        ? [
            {
              plugin: technicianFirmwareRoutes({
                db,
                audit,
                queries: deps.dashboards.queries,
                firmware: deps.firmware,
                timeZone,
              }),
              root: true,
            },
          ]
        : []),
      ...(deps.mrv ? mrvPlugins(db, audit, deps.mrv.signer, timeZone) : []),
    ];
  };
}

function mrvPlugins(
  db: Db,
  audit: AuditLog,
  signer: MrvSigner,
  timeZone: string | undefined,
): RoutePlugin[] {
  const repo = createMrvRepo();
  return [
    { plugin: mrvKeyRoute({ signer }), root: true },
    {
      plugin: mrvRoutes({
        mrv: scopedServices(db, (tx) => createMrvService({ db: tx, repo, audit, signer })),
      }),
    },
    {
      plugin: verifierAdminRoutes({
        admin: scopedServices(db, (tx) =>
          createVerifierAdmin({ db: tx, repo: createVerifierRepo(), audit }),
        ),
      }),
    },
    { plugin: verifierRoutes({ db, audit, timeZone }), root: true },
  ];
}
