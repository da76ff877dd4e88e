// The notification settings form (notifications/settings-page.ts): sent as JSON with the
// session's CSRF token, the answer (saved, or the API's error message) shown in the status line.
(() => {
  const form = document.getElementById('notify-settings');
  const status = document.getElementById('notify-status');
  if (!form || !status) return;
  const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') || '';
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const v = (name) => form.elements.namedItem(name);
    const start = v('quietStart').value;
    const end = v('quietEnd').value;
    const body = {
      email: {
        enabled: v('emailEnabled').checked,
        address: v('emailAddress').value.trim() || null,
      },
      sms: { enabled: v('smsEnabled').checked, phone: v('phone').value.trim() || null },
      quietHours: start || end ? { start, end } : null,
      criticalOverridesQuiet: v('criticalOverridesQuiet').checked,
      summary: form.querySelector('input[name="summary"]:checked')?.value || 'none',
    };
    status.textContent = '';
    try {
      const res = await fetch('/api/v1/notifications/settings', {
        method: 'PUT',
        headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
        body: JSON.stringify(body),
      });
      const answer = await res.json().catch(() => ({}));
      if (res.ok) {
        status.textContent = form.dataset.saved || 'OK';
        if (answer.sms) v('phone').value = answer.sms.phone || '';
      } else status.textContent = answer.text || answer.message || String(res.status);
    } catch (err) {
      status.textContent = String(err);
    }
  });
})();
