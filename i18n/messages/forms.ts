import { definePart } from '../part.ts';

/** What a form posted without its script says after the server's redirect (issue 19). */
export const forms = definePart({
  en: {
    'forms.ackDone': 'Alert acknowledged.',
  },
  sw: {
    'forms.ackDone': 'Tahadhari imethibitishwa.',
  },
});
