import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/**
 * Real servers for the notification channels: an SMTP server (smtp-server) that records and
 * parses every message, and a stand-in for Africa's Talking's messaging API that checks each
 * request exactly as the API documents it (notifications/sms-africastalking.ts) and answers
 * like it.
 */

export interface ReceivedMail {
  envelopeTo: string[];
  authUser: string | undefined;
  mail: ParsedMail;
}

/** The Content-Language header of a received message, as written. */
export function contentLanguage(mail: ParsedMail): string | undefined {
  return mail.headerLines.find((l) => l.key === 'content-language')?.line.replace(/^[^:]*:\s*/, '');
}

export interface SmtpFixture {
  port: number;
  /** A port nothing listens on (an SMTP server that is down). */
  closedPort: number;
  received: ReceivedMail[];
  /** Refuse the next n messages with a 451 (a server in trouble). */
  failNext(n: number): void;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

export async function startSmtp(auth?: { user: string; pass: string }): Promise<SmtpFixture> {
  const received: ReceivedMail[] = [];
  let failing = 0;
  const server = new SMTPServer({
    // Plain SMTP on loopback: the channel under test must still authenticate.
    disabledCommands: auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    allowInsecureAuth: true,
    authOptional: !auth,
    logger: false,
    onAuth(a, _session, cb) {
      if (auth && a.username === auth.user && a.password === auth.pass)
        cb(null, { user: a.username });
      else cb(new Error('Invalid username or password'));
    },
    onRcptTo(address, _session, cb) {
      if (address.address.endsWith('@refused.example')) {
        const err = new Error('Mailbox unavailable') as Error & { responseCode: number };
        err.responseCode = 550;
        cb(err);
      } else cb();
    },
    onData(stream, session, cb) {
      simpleParser(stream)
        .then((mail) => {
          if (failing > 0) {
            failing--;
            const err = new Error('Try again later') as Error & { responseCode: number };
            err.responseCode = 451;
            cb(err);
            return;
          }
          received.push({
            envelopeTo: session.envelope.rcptTo.map((r) => r.address),
            authUser: typeof session.user === 'string' ? session.user : undefined,
            mail,
          });
          cb();
        })
        .catch((err: Error) => cb(err));
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    closedPort: await freePort(),
    received,
    failNext: (n) => (failing = n),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export interface AtRequest {
  form: Record<string, string>;
  /** What this request did differently from the documented one (empty: exactly as documented). */
  problems: string[];
}

export interface AtStandIn {
  url: string;
  requests: AtRequest[];
  /** Numbers the stand-in answers specially. */
  numbers: { invalid: string; noBalance: string; serverError: string; silent: string };
  /** Answer the next n requests with a 500. */
  failNext(n: number): void;
  close(): Promise<void>;
}

const documentedFields = new Set([
  'username',
  'to',
  'message',
  'from',
  'bulkSMSMode',
  'enqueue',
  'keyword',
  'linkId',
  'retryDurationInHours',
]);

export async function startAtStandIn(account: {
  username: string;
  apiKey: string;
}): Promise<AtStandIn> {
  const requests: AtRequest[] = [];
  const numbers = {
    invalid: '+254700000403',
    noBalance: '+254700000405',
    serverError: '+254700000500',
    silent: '+254700000999',
  };
  let failing = 0;
  let nextId = 1;
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (raw += c));
    req.on('end', () => {
      const problems: string[] = [];
      if (req.method !== 'POST') problems.push(`method ${req.method}`);
      if (req.url !== '/version1/messaging') problems.push(`path ${req.url}`);
      if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded'))
        problems.push(`content-type ${req.headers['content-type']}`);
      if (req.headers.accept !== 'application/json') problems.push(`accept ${req.headers.accept}`);
      const params = new URLSearchParams(raw);
      const form = Object.fromEntries(params);
      for (const k of params.keys())
        if (!documentedFields.has(k)) problems.push(`unknown field ${k}`);
      if ([...params.keys()].length !== new Set(params.keys()).size)
        problems.push('repeated field');
      for (const k of ['username', 'to', 'message']) if (!form[k]) problems.push(`missing ${k}`);
      const to = (form.to ?? '').split(',');
      if (!to.every((n) => /^\+[1-9]\d{7,14}$/.test(n))) problems.push(`to not E.164: ${form.to}`);
      requests.push({ form, problems });
      // Authentication first, as the API does: a wrong key or username is a 401 whatever the body.
      if (req.headers.apikey !== account.apiKey || form.username !== account.username) {
        res
          .writeHead(401, { 'content-type': 'text/plain' })
          .end('The supplied authentication is invalid');
        return;
      }
      if (problems.length > 0) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(problems.join('; '));
        return;
      }
      if (to.includes(numbers.silent)) return; // never answers: the client must time out
      // failNext applies to ordinary numbers; the special ones always answer as they say.
      const special = Object.values(numbers).some((n) => to.includes(n));
      if ((failing > 0 && !special) || to.includes(numbers.serverError)) {
        if (failing > 0 && !special) failing--;
        res.writeHead(500, { 'content-type': 'text/plain' }).end('Internal Server Error');
        return;
      }
      const recipients = to.map((number) =>
        number === numbers.invalid
          ? { statusCode: 403, number, status: 'InvalidPhoneNumber', cost: '0', messageId: 'None' }
          : number === numbers.noBalance
            ? {
                statusCode: 405,
                number,
                status: 'InsufficientBalance',
                cost: '0',
                messageId: 'None',
              }
            : {
                statusCode: 101,
                number,
                status: 'Success',
                cost: 'KES 0.8000',
                messageId: `ATXid_${nextId++}`,
              },
      );
      const sent = recipients.filter((r) => r.statusCode === 101).length;
      res.writeHead(201, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          SMSMessageData: {
            Message: `Sent to ${sent}/${recipients.length} Total Cost: KES ${(0.8 * sent).toFixed(4)}`,
            Recipients: recipients,
          },
        }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    numbers,
    failNext: (n) => (failing = n),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
