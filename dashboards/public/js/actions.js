// What a person does on any page: sign out, acknowledge an alert, choose a language; and the
// ages ("3 minutes ago") kept fresh while the page is open.
import { ago, data, fill, msg, post, setTile, staleMsFor, timeEl } from './core.js';

function refreshTimes() {
  for (const t of document.querySelectorAll('time[data-ago]'))
    t.textContent = ago(t.getAttribute('datetime'));
  // A value that stops being refreshed goes stale while the page is open.
  if (data.staleMs) {
    for (const tile of document.querySelectorAll('.tile[data-ts]')) {
      if (
        Date.now() - Date.parse(tile.dataset.ts) > staleMsFor(tile.dataset.unit) &&
        !tile.classList.contains('stale')
      )
        setTile(tile, 'stale', msg('state.stale'));
    }
  }
}

export function startActions() {
  setInterval(refreshTimes, 30000);

  // Sign out (the API wants the CSRF token, which a plain link cannot send).
  for (const a of document.querySelectorAll('[data-logout]')) {
    a.addEventListener('click', (e) => {
      e.preventDefault();
      post('/api/v1/auth/logout', {}).finally(() => location.assign('/login'));
    });
  }

  document.addEventListener('submit', (e) => {
    // The language of the user's pages: saved, then this page again in it.
    const lang = e.target.closest('form[data-language]');
    if (lang) {
      e.preventDefault();
      const language = lang.querySelector('select[name=language]').value;
      post(
        '/api/v1/users/me/language',
        { language: language === 'browser' ? null : language },
        'PUT',
      ).then(
        () => location.reload(),
        (err) => alert(err.message),
      );
      return;
    }
    // Acknowledge an alert with a note.
    const form = e.target.closest('form.ack-form');
    if (!form) return;
    e.preventDefault();
    const note = form.querySelector('input[name=note]').value;
    const button = form.querySelector('button');
    button.disabled = true;
    post('/api/v1/alerts/' + form.dataset.alert + '/ack', { note })
      .then((r) => {
        const p = document.createElement('p');
        p.className = 'ack';
        p.append(
          ...fill(
            'alert.ackedBy',
            { ago: timeEl(new Date().toISOString()) },
            { who: r.acknowledgedBy },
          ),
          ': “' + r.note + '”',
        );
        form.replaceWith(p);
      })
      .catch((err) => {
        button.disabled = false;
        alert(msg('alert.ackFailed', { error: err.message }));
      });
  });
}
