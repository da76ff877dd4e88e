import type { Config } from '../config/index.ts';

/** https://<THAMANI_PUBLIC_HOSTNAME>[:<HTTPS_PORT>]: where browsers reach the API (links, redirects). */
export function publicBaseUrl(cfg: Pick<Config, 'publicHostname' | 'https'>): string {
  return `https://${cfg.publicHostname}${cfg.https.port === 443 ? '' : `:${cfg.https.port}`}`;
}
