import { definePart } from '../part.ts';

/** The layout every page shares. */
export const core = definePart({
  en: {
    'nav.digesters': 'Digesters',
    'nav.collection': 'Collection',
    'nav.fleet': 'Fleet',
    'nav.firmware': 'Firmware',
    'nav.alerts': 'Alerts',
    'layout.skip': 'Skip to content',
    'layout.signOut': 'Sign out',
    'layout.home': 'Home',
    'layout.pages': 'Pages',
  },
  sw: {
    'nav.digesters': 'Vichachuzi',
    'nav.collection': 'Ukusanyaji',
    'nav.fleet': 'Vifaa',
    'nav.firmware': 'Programu dhibiti',
    'nav.alerts': 'Tahadhari',
    'layout.skip': 'Ruka hadi maudhui',
    'layout.signOut': 'Toka',
    'layout.home': 'Mwanzo',
    'layout.pages': 'Kurasa',
  },
});
