// Thamani dashboards: the small client script. The pages work without it (server-rendered);
// it adds the chart (uPlot), live updates (Server-Sent Events), acknowledging alerts, choosing
// a language and signing out. No framework, no build step: ES modules every current phone runs,
// served from /assets/ (the CSP's 'self'). Every word it writes comes from the catalogue, in the
// page's language, through the page data (dashboards/html.ts layout()).
import { startActions } from './js/actions.js';
import { startChart } from './js/chart.js';
import { startLive } from './js/live.js';

startActions();
startChart();
startLive();
