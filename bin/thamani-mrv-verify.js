#!/usr/bin/env node
// The offline MRV report verifier on its own (mrv/mrv-verify-offline.ts): a report, its readings
// export or an inclusion proof, and the public key; it never loads the database driver.
import { runOfflineVerifier } from './offline-verifier.js';

await runOfflineVerifier('thamani-mrv-verify', 'mrv/mrv-verify-offline');
