import { definePart } from '../part.ts';

/** Per-unit alert thresholds: the picker on /manage/rules, the unit's own page, refusals. */
export const alertOverrides = definePart({
  en: {
    'rules.unit.pickTitle': 'Thresholds for one unit',
    'rules.unit.pickHint':
      'A unit can have its own thresholds for any rule of its kind; every other unit keeps the kind’s.',
    'rules.unit.unit': 'Unit',
    'rules.unit.open': 'Edit its thresholds',
    'rules.unit.title': 'Alert thresholds: {name}',
    'rules.unit.intro':
      'Rules marked “own thresholds” apply to this unit only; the others follow the rule of every {kind}.',
    'rules.unit.own': 'own thresholds',
    'rules.unit.inherited': 'as every {kind}',
    'rules.unit.kindValue': 'every unit: {value}',
    'rules.unit.noValue': 'none',
    'rules.unit.save': 'Save for this unit',
    'rules.unit.reset': 'Use the kind’s thresholds',
    'rules.unit.saved': 'Saved for {unit}: {rule}.',
    'rules.unit.removed': '{rule} for {unit} follows the kind’s rule again.',
    'rules.unit.back': 'All alert rules',
    'rules.unit.link': 'Alert thresholds of this unit',
    'rules.unit.overridden': 'Units with their own thresholds:',
    'rules.invalid.title': 'Not saved: {rule}',
    'rules.invalid.notFinite': 'Warning, critical and clear must be numbers.',
    'rules.invalid.clearSide':
      'The clear value must be {side} the warning value for this rule: an open alert closes only once the value is back past it.',
    'rules.invalid.criticalSide':
      'The critical value must be {side} the warning value for this rule.',
  },
  sw: {
    'rules.unit.pickTitle': 'Viwango vya kitengo kimoja',
    'rules.unit.pickHint':
      'Kitengo kinaweza kuwa na viwango vyake kwa kanuni yoyote ya aina yake; kila kitengo kingine hufuata viwango vya aina.',
    'rules.unit.unit': 'Kitengo',
    'rules.unit.open': 'Hariri viwango vyake',
    'rules.unit.title': 'Viwango vya tahadhari: {name}',
    'rules.unit.intro':
      'Kanuni zilizoandikwa “viwango vyake” zinahusu kitengo hiki pekee; nyingine hufuata kanuni ya kila {kind}.',
    'rules.unit.own': 'viwango vyake',
    'rules.unit.inherited': 'kama kila {kind}',
    'rules.unit.kindValue': 'kila kitengo: {value}',
    'rules.unit.noValue': 'hakuna',
    'rules.unit.save': 'Hifadhi kwa kitengo hiki',
    'rules.unit.reset': 'Tumia viwango vya aina',
    'rules.unit.saved': 'Imehifadhiwa kwa {unit}: {rule}.',
    'rules.unit.removed': '{rule} kwa {unit} inafuata tena kanuni ya aina.',
    'rules.unit.back': 'Kanuni zote za tahadhari',
    'rules.unit.link': 'Viwango vya tahadhari vya kitengo hiki',
    'rules.unit.overridden': 'Vitengo vyenye viwango vyake:',
    'rules.invalid.title': 'Haikuhifadhiwa: {rule}',
    'rules.invalid.notFinite': 'Onyo, hatari na kurejea lazima ziwe namba.',
    'rules.invalid.clearSide':
      'Thamani ya kurejea lazima iwe {side} thamani ya onyo kwa kanuni hii: tahadhari iliyo wazi hufungwa tu thamani ikirudi nyuma yake.',
    'rules.invalid.criticalSide':
      'Thamani ya hatari lazima iwe {side} thamani ya onyo kwa kanuni hii.',
  },
});
