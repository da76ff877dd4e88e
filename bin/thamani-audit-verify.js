#!/usr/bin/env node
// The offline audit verifier on its own (audit/audit-verify-offline.ts): an export, the
// checkpoint files and the public key; it never loads the database driver.
import { runOfflineVerifier } from './offline-verifier.js';

await runOfflineVerifier('thamani-audit-verify', 'audit/audit-verify-offline');
