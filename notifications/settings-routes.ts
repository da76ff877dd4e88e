import { readFileSync } from 'node:fs';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { auditActor } from '../api/audit-context.ts';
import { scopedServices } from '../api/scoped-services.ts';
import type { AuditLog } from '../audit/index.ts';
import type { Db } from '../db/client.ts';
import { formatterFor, DEFAULT_TIME_ZONE, type Formatter } from '../dashboards/format-fns.ts';
import { errorPage } from '../dashboards/error-page.ts';
import { h, layout } from '../dashboards/html.ts';
import { SETTINGS_PATH } from './notification-fns.ts';
import { ownUserId } from './notification-routes.ts';
import {
  createSettingsService,
  type Delivery,
  type NotificationSettings,
} from './settings-service.ts';

/**
 * The settings page (server-rendered, CSP-clean: no inline script or style). The form is sent by
 * /assets/notification-settings.js as JSON to PUT /api/v1/notifications/settings with the session's
 * CSRF token from the layout's meta tag; the API validates, stores and audits.
 */

const script = readFileSync(new URL('./public/settings.js', import.meta.url), 'utf8');

/** Under /assets/ with the dashboards' other scripts: public, like any site's. */
const SCRIPT_PATH = '/assets/notification-settings.js';

const checked = (on: boolean): string => (on ? ' checked' : '');

export function settingsBodyHtml(
  s: NotificationSettings,
  deliveries: Delivery[],
  f: Formatter,
  saved = false,
): string {
  const t = f.t;
  const summary = (['none', 'daily', 'weekly'] as const)
    .map((v) => {
      const label = t(
        v === 'none'
          ? 'notify.settings.summaryNone'
          : v === 'daily'
            ? 'notify.settings.summaryDaily'
            : 'notify.settings.summaryWeekly',
      );
      return `<label><input type="radio" name="summary" value="${v}"${checked(s.summary === v)}> ${h(label)}</label>`;
    })
    .join(' ');
  const status = (d: Delivery): string =>
    t(
      d.status === 'delivered'
        ? 'notify.settings.statusDelivered'
        : d.status === 'failed'
          ? 'notify.settings.statusFailed'
          : 'notify.settings.statusPending',
    );
  const rows = deliveries
    .map(
      (d) =>
        `<tr><td>${h(f.dateTime(d.at))}</td><td>${h(t(d.channel === 'sms' ? 'notify.settings.sms' : 'notify.settings.email'))}</td><td>${h(d.subject ?? d.event)}</td><td>${h(status(d))}${d.status !== 'delivered' && d.error ? `<br><small>${h(d.error)}</small>` : ''}</td></tr>`,
    )
    .join('');
  return `${saved ? `<p class="notice status" role="status">${h(t('notify.settings.saved'))}</p>` : ''}<p>${h(t('notify.settings.intro'))}</p>
<form id="notify-settings" class="settings" method="post" action="${SETTINGS_PATH}" data-saved="${h(t('notify.settings.saved'))}" novalidate>
<fieldset><legend>${h(t('notify.settings.channels'))}</legend>
<label><input type="checkbox" name="emailEnabled"${checked(s.email.enabled)}> ${h(t('notify.settings.email'))}</label>
<label>${h(t('notify.settings.emailAddress'))} <input type="email" name="emailAddress" autocomplete="email" value="${h(s.email.address ?? '')}"></label>
<label><input type="checkbox" name="smsEnabled"${checked(s.sms.enabled)}> ${h(t('notify.settings.sms'))}</label>
<label>${h(t('notify.settings.phone'))} <input type="tel" name="phone" autocomplete="tel" inputmode="tel" value="${h(s.sms.phone ?? '')}"></label>
</fieldset>
<fieldset><legend>${h(t('notify.settings.quiet'))}</legend><p>${h(t('notify.settings.quietNote', { zone: f.timeZone }))}</p>
<label>${h(t('notify.settings.quietFrom'))} <input type="time" name="quietStart" value="${h(s.quietHours?.start ?? '')}"></label>
<label>${h(t('notify.settings.quietTo'))} <input type="time" name="quietEnd" value="${h(s.quietHours?.end ?? '')}"></label>
<label><input type="checkbox" name="criticalOverridesQuiet"${checked(s.criticalOverridesQuiet)}> ${h(t('notify.settings.criticalOverride'))}</label>
</fieldset>
<fieldset><legend>${h(t('notify.settings.summary'))}</legend>${summary}</fieldset>
<button type="submit">${h(t('notify.settings.save'))}</button> <span id="notify-status" role="status"></span>
</form>
<h2>${h(t('notify.settings.recent'))}</h2>
${
  deliveries.length === 0
    ? `<p class="empty">${h(t('notify.settings.noneYet'))}</p>`
    : `<div class="table-wrap"><table><thead><tr><th>${h(t('notify.settings.colWhen'))}</th><th>${h(t('notify.settings.colChannel'))}</th><th>${h(t('notify.settings.colWhat'))}</th><th>${h(t('notify.settings.colStatus'))}</th></tr></thead><tbody>${rows}</tbody></table></div>`
}
<script src="${SCRIPT_PATH}" defer></script>`;
}

function html(reply: FastifyReply, body: string, status = 200): FastifyReply {
  return reply
    .status(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(body);
}

export function settingsPage(deps: {
  db: Db;
  audit: AuditLog;
  timeZone?: string;
}): FastifyPluginAsync {
  const scoped = scopedServices(deps.db, (tx) =>
    createSettingsService({ db: tx, audit: deps.audit }),
  );
  /** The reader's language (their choice, else Accept-Language), as every dashboard page. */
  const fmt = formatterFor(deps.timeZone ?? DEFAULT_TIME_ZONE);
  return (app) => {
    app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
      const status = err.statusCode ?? 500;
      // A cross-site post never came from our page: the API's coded JSON answers it.
      if (err.code === 'CROSS_SITE_REQUEST') throw err;
      if (status === 401) return reply.redirect('/login', 303);
      // The refusal in the reader's language (NOTIFY_NOT_A_USER for a token), never English only.
      if (status === 400 || status === 403)
        return html(reply, errorPage(err, fmt(request), { status }), status);
      throw err;
    });
    app.get(
      SETTINGS_PATH,
      { schema: { hide: true }, preHandler: app.requirePermission('account:self') },
      async (request, reply) => {
        const userId = ownUserId(request);
        const { settings, deliveries } = await scoped(request, async (s) => ({
          settings: await s.read(userId),
          deliveries: await s.deliveries(userId, 20),
        }));
        const f = fmt(request);
        return html(
          reply,
          layout({
            title: f.t('notify.settings.title'),
            principal: request.principal!,
            format: f,
            active: SETTINGS_PATH,
            body: settingsBodyHtml(
              settings,
              deliveries,
              f,
              (request.query as { done?: string }).done === '1',
            ),
          }),
        );
      },
    );
    // The form posted without its script (plain form fields; the CSRF token in its hidden field):
    // the same service call as the JSON API, then back to the page with a "saved" line.
    app.post(
      SETTINGS_PATH,
      { schema: { hide: true }, preHandler: app.requirePermission('account:self') },
      async (request, reply) => {
        const b = (request.body ?? {}) as Record<string, string | undefined>;
        const on = (k: string) => b[k] === 'on';
        const text = (k: string) => (b[k] ?? '').trim() || null;
        const start = text('quietStart');
        const end = text('quietEnd');
        const summary = b.summary === 'daily' || b.summary === 'weekly' ? b.summary : 'none';
        const userId = ownUserId(request);
        await scoped(request, (s) =>
          s.update(
            userId,
            {
              email: { enabled: on('emailEnabled'), address: text('emailAddress') },
              sms: { enabled: on('smsEnabled'), phone: text('phone') },
              quietHours: start || end ? { start: start ?? '', end: end ?? '' } : null,
              criticalOverridesQuiet: on('criticalOverridesQuiet'),
              summary,
            },
            auditActor(request),
          ),
        );
        return reply.redirect(`${SETTINGS_PATH}?done=1`, 303);
      },
    );
    app.get(SCRIPT_PATH, { schema: { hide: true } }, (_request, reply) =>
      reply
        .type('text/javascript; charset=utf-8')
        .header('cache-control', 'public, max-age=3600')
        .send(script),
    );
    return Promise.resolve();
  };
}
