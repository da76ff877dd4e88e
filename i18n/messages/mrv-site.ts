import { definePart } from '../part.ts';

/** Site reports and calibration versions on the verifier pages (mrv/verifier-*.ts). */
export const mrvSite = definePart({
  en: {
    'mrvsite.title': 'Site {site}, {count} digesters · {period}',
    'mrvsite.listName': 'Site report: all {count} digesters',
    'mrvsite.totals': 'Site totals: the sums of the digesters below',
    'mrvsite.digester': 'Digester {name}',
    'mrvsite.leaves': 'Its readings are leaves {first} to {last} of the site tree ({count}).',
    'mrvsite.noLeaves': 'No reading in the period: every interval is missing.',
    'mrvsite.section.calibrationVersions':
      'Calibration versions: which configuration produced which readings',
    'mrvsite.col.version': 'Configuration version',
    'mrvsite.col.calibration': 'Calibration (value × gain + offset)',
    'mrvsite.factory': 'factory calibration',
  },
  sw: {
    'mrvsite.title': 'Eneo {site}, vichachuzi {count} · {period}',
    'mrvsite.listName': 'Ripoti ya eneo: vichachuzi vyote {count}',
    'mrvsite.totals': 'Jumla za eneo: jumla za vichachuzi vilivyo hapa chini',
    'mrvsite.digester': 'Kichachuzi {name}',
    'mrvsite.leaves': 'Vipimo vyake ni majani {first} hadi {last} ya mti wa eneo ({count}).',
    'mrvsite.noLeaves': 'Hakuna kipimo katika kipindi: kila kipindi kidogo kinakosekana.',
    'mrvsite.section.calibrationVersions':
      'Matoleo ya urekebishaji: usanidi upi ulitoa vipimo vipi',
    'mrvsite.col.version': 'Toleo la usanidi',
    'mrvsite.col.calibration': 'Urekebishaji (thamani × kizidishi + nyongeza)',
    'mrvsite.factory': 'urekebishaji wa kiwandani',
  },
});
