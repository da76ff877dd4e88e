import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmailChannel } from './email-channel.ts';
import { createAfricasTalkingSms } from './sms-africastalking.ts';
import {
  contentLanguage,
  startAtStandIn,
  startSmtp,
  type AtStandIn,
  type SmtpFixture,
} from '../test/notification-fixtures.ts';

/**
 * The two channels against real servers: an SMTP server (smtp-server, in process) that parses
 * what it receives, and a stand-in for Africa's Talking that checks each request exactly as that
 * API documents it and answers as it does (201 with per-recipient statuses, 401, 5xx, silence).
 */

let smtp: SmtpFixture;
let at: AtStandIn;

beforeAll(async () => {
  smtp = await startSmtp({ user: 'thamani', pass: 'smtp test password' });
  at = await startAtStandIn({ username: 'thamani-ke', apiKey: 'at-test-key-0123456789' });
});
afterAll(async () => {
  await smtp.close();
  await at.close();
});

const msg = (over: Partial<Parameters<ReturnType<typeof createEmailChannel>['send']>[0]>) => ({
  key: 'alert:1:opened:u:email',
  to: 'manager@school.example',
  subject: 'Critical: pH low at Kitchen A',
  body: 'Cha kufanya: stop feeding.\nFungua: https://thamani.example/digesters/x',
  lang: 'sw',
  ...over,
});

describe('email over SMTP', () => {
  it('delivers recipient, subject, text and language to a real SMTP server, authenticated', async () => {
    const email = createEmailChannel({
      url: `smtp://thamani:${encodeURIComponent('smtp test password')}@127.0.0.1:${smtp.port}`,
      from: 'Thamani <alerts@thamani.example>',
      messageIdDomain: 'thamani.example',
    });
    const r = await email.send(msg({ to: 'mary@school.example' }));
    email.close?.();
    expect(r.ok).toBe(true);
    const got = smtp.received.at(-1)!;
    expect(got.envelopeTo).toEqual(['mary@school.example']);
    expect(got.authUser).toBe('thamani');
    expect(got.mail.subject).toBe('Critical: pH low at Kitchen A');
    expect(got.mail.text?.trim()).toBe(msg({}).body);
    expect(contentLanguage(got.mail)).toBe('sw');
    // The same outbox key always gives the same Message-ID (a resend is recognisably the same).
    expect(got.mail.messageId).toMatch(/^<[0-9a-f]{32}@thamani\.example>$/);
  });

  it('reports a refused mailbox as permanent and an unreachable server as worth retrying', async () => {
    const email = createEmailChannel({
      url: `smtp://thamani:${encodeURIComponent('smtp test password')}@127.0.0.1:${smtp.port}`,
      from: 'alerts@thamani.example',
      messageIdDomain: 'thamani.example',
    });
    const refused = await email.send(msg({ to: 'nobody@refused.example' }));
    email.close?.();
    expect(refused).toMatchObject({ ok: false, permanent: true });
    const down = createEmailChannel({
      url: `smtp://127.0.0.1:${smtp.closedPort}`,
      from: 'alerts@thamani.example',
      messageIdDomain: 'thamani.example',
      timeoutMs: 5000,
    });
    expect(await down.send(msg({}))).toMatchObject({ ok: false, permanent: false });
  });
});

describe("SMS through Africa's Talking", () => {
  const sms = (over: { apiKey?: string; timeoutMs?: number; from?: string } = {}) =>
    createAfricasTalkingSms({
      username: 'thamani-ke',
      apiKey: over.apiKey ?? 'at-test-key-0123456789',
      from: over.from,
      baseUrl: at.url,
      timeoutMs: over.timeoutMs,
    });

  it('sends the documented form request and reads the per-recipient success', async () => {
    const r = await sms({ from: 'THAMANI' }).send(msg({ to: '+254712345678', body: 'Hatari: pH' }));
    expect(r).toEqual({ ok: true, providerId: expect.stringMatching(/^ATXid_/) as string });
    const req = at.requests.at(-1)!;
    expect(req.problems).toEqual([]);
    expect(req.form).toEqual({
      username: 'thamani-ke',
      to: '+254712345678',
      message: 'Hatari: pH',
      from: 'THAMANI',
    });
  });

  it('leaves `from` out when no sender id is configured', async () => {
    await sms().send(msg({ to: '+254712345678', body: 'x' }));
    expect(at.requests.at(-1)!.form).toEqual({
      username: 'thamani-ke',
      to: '+254712345678',
      message: 'x',
    });
    expect(at.requests.at(-1)!.problems).toEqual([]);
  });

  it('maps per-recipient refusals: an invalid number is permanent, no balance is retried', async () => {
    expect(await sms().send(msg({ to: at.numbers.invalid }))).toMatchObject({
      ok: false,
      permanent: true,
      error: expect.stringContaining('403 InvalidPhoneNumber') as string,
    });
    expect(await sms().send(msg({ to: at.numbers.noBalance }))).toMatchObject({
      ok: false,
      permanent: false,
      error: expect.stringContaining('405 InsufficientBalance') as string,
    });
  });

  it('retries on 401 (wrong key), 5xx and a provider that does not answer', async () => {
    const wrong = await sms({ apiKey: 'wrong-key-0123456789' }).send(msg({ to: '+254712345678' }));
    expect(wrong).toMatchObject({
      ok: false,
      permanent: false,
      error: expect.stringContaining('HTTP 401') as string,
    });
    expect(JSON.stringify(wrong)).not.toContain('wrong-key');
    expect(await sms().send(msg({ to: at.numbers.serverError }))).toMatchObject({
      ok: false,
      permanent: false,
      error: expect.stringContaining('HTTP 500') as string,
    });
    expect(await sms({ timeoutMs: 300 }).send(msg({ to: at.numbers.silent }))).toMatchObject({
      ok: false,
      permanent: false,
      error: expect.stringContaining('TimeoutError') as string,
    });
  });
});
