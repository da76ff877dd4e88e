// The technician's forms (dashboards/technician-pages.ts): every `form[data-tech]` is posted with
// the session's CSRF token in the header the API checks (a plain form cannot send it), after a
// confirmation where the form asks for one. The answer is a page: a redirect is followed; any
// other page replaces the current content (the URL stays, so a reload shows the form again and
// never a one-time token or link). Several values of one field travel comma-separated.
'use strict';

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') || '';
  const data = JSON.parse(document.getElementById('page-data')?.textContent || '{}');
  const text = data.tech || {};

  function fields(form, submitter) {
    const values = new Map();
    for (const [name, value] of new window.FormData(form)) {
      if (typeof value !== 'string' || value === '') continue;
      values.set(name, [...(values.get(name) || []), value]);
    }
    // Inputs tied to the form from elsewhere (form="id": the quarantine's checkboxes).
    if (submitter && submitter.name) values.set(submitter.name, [submitter.value]);
    const body = new window.URLSearchParams();
    for (const [name, list] of values) body.set(name, list.join(','));
    return body;
  }

  function show(html) {
    const doc = new window.DOMParser().parseFromString(html, 'text/html');
    const main = doc.querySelector('main');
    if (!main) throw new Error('unexpected answer');
    document.title = doc.title;
    document.querySelector('main').replaceWith(document.adoptNode(main));
    const h1 = document.querySelector('main h1');
    if (h1) {
      h1.tabIndex = -1;
      h1.focus();
    }
  }

  async function send(form, submitter) {
    let url = form.getAttribute('action');
    let body;
    let type = 'application/x-www-form-urlencoded';
    if (form.hasAttribute('data-upload')) {
      // The image's bytes are the body (as POST /api/v1/firmware takes them); the rest is the query.
      const file = form.querySelector('input[type=file]').files[0];
      const query = fields(form);
      query.delete('image');
      url += '?' + query.toString();
      body = file;
      type = 'application/octet-stream';
    } else body = fields(form, submitter).toString();
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': type, 'x-csrf-token': csrf },
      body,
      credentials: 'same-origin',
    });
    if (res.redirected) {
      location.assign(res.url);
      return;
    }
    show(await res.text());
  }

  document.addEventListener('submit', (e) => {
    const form = e.target.closest('form[data-tech]');
    if (!form) return;
    e.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const buttons = form.querySelectorAll('button');
    for (const b of buttons) b.disabled = true;
    form.setAttribute('aria-busy', 'true');
    send(form, e.submitter).catch((err) => {
      for (const b of buttons) b.disabled = false;
      form.removeAttribute('aria-busy');
      window.alert((text.failed || '{error}').replace('{error}', err.message));
    });
  });

  // The quarantine's "select all open".
  document.addEventListener('click', (e) => {
    const b = e.target.closest('[data-select-all]');
    if (!b) return;
    for (const box of document.querySelectorAll('input[name=ids][form=bulk]')) box.checked = true;
  });
})();
