/**
 * Every column that names a person (a user's id, or an actor id `<user id>` / `token:<id>`), and
 * how a data export treats it (issue 19, docs/security-model.md "Privacy"). The export reads each
 * `export` source generically, so a table added later is exported once it is listed here; and
 * auth/personal-data-coverage.test.ts reads the database's own schema for every column that
 * refers to a user and fails on any that is neither here nor in `notExported` (with its reason).
 */
export interface PersonalSource {
  readonly table: string;
  readonly column: string;
  /** Columns never put in an export (secrets, large binaries): said why beside each entry. */
  readonly omit?: readonly string[];
}

export const exportedRecords: readonly PersonalSource[] = [
  { table: 'feedings', column: 'recorded_by' },
  { table: 'collections', column: 'collected_by' },
  { table: 'notification_settings', column: 'user_id' },
  // The messages sent to them (their alerts' notifications).
  { table: 'notification_outbox', column: 'user_id' },
  { table: 'api_tokens', column: 'owner_id' },
  { table: 'api_tokens', column: 'created_by' },
  { table: 'firmware_images', column: 'uploaded_by' },
  { table: 'firmware_images', column: 'approved_by' },
  { table: 'firmware_rollouts', column: 'created_by' },
  // A certificate's PEM is the device's, not the person's: the row says who issued it.
  { table: 'certificates', column: 'issued_by', omit: ['pem'] },
  { table: 'certificates', column: 'replaced_by', omit: ['pem'] },
  { table: 'enrolment_tokens', column: 'created_by' },
  { table: 'device_commands', column: 'created_by' },
  { table: 'device_config_defaults', column: 'updated_by' },
  { table: 'device_config_versions', column: 'created_by' },
  { table: 'mrv_calibrations', column: 'recorded_by' },
  { table: 'mrv_readings_archive', column: 'archived_by' },
  { table: 'mrv_reports', column: 'issued_by' },
  { table: 'mrv_site_parameters', column: 'updated_by' },
  { table: 'alert_rule_overrides', column: 'updated_by_id' },
];

/**
 * Columns that refer to a user and are deliberately not read by the generic export, each with
 * its reason. (Anything here is still covered: by a purpose-made part of the export, or it is
 * not the person's data.)
 */
export const notExported: Readonly<Record<string, string>> = {
  'users.id': 'the account itself: exported as `user`',
  'sessions.user_id':
    'exported as `sessions` without the session id hash and CSRF token (live credentials)',
  'user_unit_assignments.user_id': 'exported as `assignedUnits`',
  'audit_log.actor_id': 'exported as `auditEntriesAsActor` (with its request metadata)',
  'alerts.acknowledged_by_id': 'exported as `alertsAcknowledged`',
  'user_tokens.user_id':
    'one-time set-password links: only a hash of a live credential, expiring within hours',
  'mrv_verifier_tokens.created_by':
    'not readable by the application role (verifier secrets, migration 0031); who created a verifier token is in their audit entries (`auditEntriesAsActor`)',
  'thamani_scope.actor_id':
    'the row-level-security scope of one transaction (migration 0019): gone when it ends',
};

/** The key a source's rows are exported under. */
export const sourceKey = (s: PersonalSource): string => `${s.table}.${s.column}`;
