import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Role } from './permissions.ts';
import { createUserWithPassword, systemActor, type ApiHarness } from '../test/api-harness.ts';
import { createFullGateway } from '../test/full-gateway.ts';
import { testLogger } from '../test/db.ts';
import { createAlertService } from '../dashboards/alert-service.ts';

/**
 * The main forms, sent as a browser with scripts off sends them: the form is found on the
 * rendered page, its action and hidden fields (the CSRF token) are read from there, its visible
 * fields filled as a person would; no x-csrf-token header, no JSON. Each answers with a redirect
 * to a page that says what happened (in the reader's language), and the change is stored.
 */
const PASSWORD = 'correct horse battery staple';
let h: ApiHarness;
let digester = '';
let point = '';

beforeAll(async () => {
  h = await createFullGateway();
  const q = h.t.database.pool;
  await createAlertService({ pool: q, logger: testLogger, notify: false }).ensureDefaults();
  const site = (
    await q.query<{ id: string }>(`INSERT INTO sites (name) VALUES ('NoJs') RETURNING id`)
  ).rows[0]!.id;
  const unit = async (kind: string) =>
    (
      await q.query<{ id: string }>(
        `INSERT INTO units (site_id, kind, name, created_at) VALUES ($1, $2, $3, now() - interval '30 days') RETURNING id`,
        [site, kind, `nojs ${kind}`],
      )
    ).rows[0]!.id;
  digester = await unit('biodigester');
  point = await unit('collection_point');
}, 120_000);

interface Session {
  id: string;
  cookie: string;
}

/** Signs in through the sign-in page's own form (no script), as the browser would. */
async function signInByForm(role: Role): Promise<Session> {
  const username = `n${randomBytes(5).toString('hex')}`;
  const { user } = await createUserWithPassword(h, { username, role, password: PASSWORD });
  if (role === 'kitchen_manager' || role === 'collector')
    await h.users.assignUnits(user.id, [digester, point], systemActor);
  const page = await h.app.inject({ method: 'GET', url: '/login' });
  const form = formOn(page.body, /action="\/login"/);
  const res = await h.app.inject({
    method: 'POST',
    url: form.action,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'sec-fetch-site': 'same-origin',
    },
    payload: new URLSearchParams({ ...form.hidden, username, password: PASSWORD }).toString(),
  });
  expect(res.statusCode, res.body.slice(0, 300)).toBe(303);
  const set = res.headers['set-cookie'];
  const cookie = ((Array.isArray(set) ? set[0] : set) as string).split(';')[0]!;
  return { id: user.id, cookie };
}

/** The first form on a page whose opening tag matches: its action and hidden fields. */
function formOn(html: string, match: RegExp): { action: string; hidden: Record<string, string> } {
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)) {
    if (!match.test(m[1]!)) continue;
    expect(m[1], 'a plain browser posts it').toMatch(/method="post"/);
    const action = /action="([^"]+)"/.exec(m[1]!)![1]!.replace(/&amp;/g, '&');
    const hidden: Record<string, string> = {};
    for (const i of m[2]!.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g))
      hidden[i[1]!] = i[2]!;
    return { action, hidden };
  }
  throw new Error(`no form matching ${match}`);
}

async function submit(s: Session, pageUrl: string, match: RegExp, fields: Record<string, string>) {
  const page = await h.app.inject({ method: 'GET', url: pageUrl, headers: { cookie: s.cookie } });
  expect(page.statusCode, pageUrl).toBe(200);
  const form = formOn(page.body, match);
  const res = await h.app.inject({
    method: 'POST',
    url: form.action,
    headers: {
      cookie: s.cookie,
      'content-type': 'application/x-www-form-urlencoded',
      'sec-fetch-site': 'same-origin',
    },
    payload: new URLSearchParams({ ...form.hidden, ...fields }).toString(),
  });
  expect(res.statusCode, `${form.action}: ${res.body.slice(0, 300)}`).toBe(303);
  // Followed as the browser follows it (a page may send one on, e.g. to a person's one digester).
  let next = res;
  for (let hops = 0; hops < 4 && next.statusCode >= 300 && next.statusCode < 400; hops++)
    next = await h.app.inject({
      method: 'GET',
      url: String(next.headers.location),
      headers: { cookie: s.cookie },
    });
  expect(next.statusCode).toBe(200);
  return next.body;
}

describe('the main forms work with scripts off', () => {
  it('a kitchen manager records a feeding and chooses Swahili; the pages say so', async () => {
    const km = await signInByForm('kitchen_manager');
    const page = await submit(km, `/digesters/${digester}/feedings`, /id="feeding-form"/, {
      kg: '42.5',
      at: '',
      note: 'no script',
    });
    expect(page).toContain('Saved.');
    const rows = await h.t.database.pool.query(`SELECT kg FROM feedings WHERE recorded_by = $1`, [
      km.id,
    ]);
    expect(rows.rows).toEqual([{ kg: 42.5 }]);
    const sw = await submit(km, '/digesters', /class="lang"/, { language: 'sw' });
    expect(sw).toMatch(/<html lang="sw"/);
  });

  it('a collector marks a point collected', async () => {
    const c = await signInByForm('collector');
    const page = await submit(c, `/collection/points/${point}`, /data-kind="collection"/, {
      weightKg: '80',
      at: '',
      note: '',
    });
    expect(page).toContain('Saved.');
    const rows = await h.t.database.pool.query(
      `SELECT weight_kg FROM collections WHERE collected_by = $1`,
      [c.id],
    );
    expect(rows.rows).toEqual([{ weight_kg: 80 }]);
  });

  it('a kitchen manager saves notification settings and acknowledges an alert', async () => {
    const km = await signInByForm('kitchen_manager');
    const saved = await submit(km, '/settings/notifications', /id="notify-settings"/, {
      emailEnabled: 'on',
      emailAddress: 'km@example.org',
      summary: 'daily',
    });
    expect(saved).toContain('role="status"');
    expect(saved).toContain('value="km@example.org"');
    const dev = `nojs-${randomBytes(3).toString('hex')}`;
    await h.t.database.pool.query(
      `INSERT INTO devices (id, unit_id, kind, status) VALUES ($1, $2, 'biodigester', 'active')`,
      [dev, digester],
    );
    const alert = (
      await h.t.database.pool.query<{ id: string }>(
        `INSERT INTO alerts (rule_id, unit_id, device_id, severity, status, opened_at, open_value)
         SELECT id, $1, $2, 'warning', 'open', now(), 6.1 FROM alert_rules WHERE unit_kind = 'biodigester' LIMIT 1 RETURNING id`,
        [digester, dev],
      )
    ).rows[0]?.id;
    expect(alert).toBeDefined();
    const page = await submit(km, '/alerts', new RegExp(`data-alert="${alert}"`), {
      note: 'checked the inlet',
    });
    expect(page).toContain('Alert acknowledged.');
    const row = await h.t.database.pool.query(
      `SELECT acknowledged_by_id FROM alerts WHERE id = $1`,
      [alert],
    );
    expect(row.rows[0]).toEqual({ acknowledged_by_id: km.id });
  });
});
