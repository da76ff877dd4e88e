import { pino, type Logger } from 'pino';
import type { Config } from '../config/index.ts';

/** Keys that must never reach a log line, wherever they appear in an object. */
export const redactPaths = [
  'password',
  '*.password',
  'passphrase',
  '*.passphrase',
  'token',
  '*.token',
  'privateKey',
  '*.privateKey',
  'key',
  '*.key',
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
];

export function createLogger(log: Config['log']): Logger {
  return pino({
    level: log.level,
    redact: { paths: redactPaths, censor: '[redacted]' },
    ...(log.format === 'pretty'
      ? {
          transport: {
            target: 'pino-pretty',
            options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' },
          },
        }
      : {}),
  });
}
