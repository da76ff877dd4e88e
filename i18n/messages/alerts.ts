import { definePart } from '../part.ts';

/**
 * Alerts: each default rule's title and what to do (keyed by the rule id without its kind), and
 * the words of an alert list.
 */
export const alerts = definePart({
  en: {
    'alert.title.temperature_c.low': 'Digester too cold (mesophilic band)',
    'alert.title.temperature_c.high': 'Digester too warm (mesophilic band)',
    'alert.title.ph.low': 'pH low: acidifying (overfed?)',
    'alert.title.ph.high': 'pH high',
    'alert.title.biogas_pressure_kpa.high': 'Gas pressure high',
    'alert.title.methane_pct.low': 'Methane share low',
    'alert.title.h2s_ppm.high': 'H₂S high (corrosive, toxic)',
    'alert.title.fill_level_pct.high': 'Collection point needs collection',
    'alert.title.battery_v.low': 'Sensor battery low',
    'alert.title.device.offline': 'Sensor offline',
    'alert.title.device.cert_expiry': 'Sensor certificate expiring',
    'alert.guidance.temperature_c.low':
      'Check the heater or insulation and cover the digester at night; feed less until it warms up.',
    'alert.guidance.temperature_c.high':
      'Shade the digester and check the heater is off; do not add hot water or hot food waste.',
    'alert.guidance.ph.low':
      'The digester is acidifying: stop feeding for a few days, then feed less; add lime or wood ash only if advised.',
    'alert.guidance.ph.high':
      'Feed more fresh food waste and less ash or lime; check the pH again tomorrow.',
    'alert.guidance.biogas_pressure_kpa.high':
      'Use or flare gas now and check the gas line and valves for a blockage; keep flames away from leaks.',
    'alert.guidance.methane_pct.low':
      'Check for air leaks at the inlet and gas holder and feed evenly; poor gas burns badly.',
    'alert.guidance.h2s_ppm.high':
      'Ventilate the kitchen and replace or regenerate the H₂S filter; H₂S is toxic and corrodes burners.',
    'alert.guidance.fill_level_pct.high':
      'Empty the bin on the next round; collect it today if it is nearly full.',
    'alert.guidance.battery_v.low': 'Replace or charge the sensor battery at the next visit.',
    'alert.guidance.device.offline':
      'Check the sensor has power and signal; restart it if it stays offline.',
    'alert.guidance.device.cert_expiry':
      'Renew the sensor’s certificate before it expires (technician: rotate it on the device page or with the CLI).',
    'alert.guidance.default':
      'Check the device and its readings; acknowledge with a note of what was done.',
    'alert.none': 'No alerts.',
    'alert.ackedBy': 'Acknowledged by {who} {ago}',
    'alert.note': 'Note',
    'alert.notePlaceholder': 'What was done?',
    'alert.acknowledge': 'Acknowledge',
    'alert.ackFailed': 'Could not acknowledge: {error}',
    'alert.sensor': 'sensor {id}',
    'alert.times': '{times} times, last',
    'alert.opened': 'opened {ago}',
    'alert.closedAgo': 'closed {ago}',
    'alert.minOffline': '{minutes} min offline',
    'alert.status.closed': 'closed',
    'alerts.open': 'Open',
    'alerts.recentlyClosed': 'Recently closed',
  },
  sw: {
    'alert.title.temperature_c.low': 'Kichachuzi kina baridi mno (kiwango cha mesofili)',
    'alert.title.temperature_c.high': 'Kichachuzi kina joto jingi (kiwango cha mesofili)',
    'alert.title.ph.low': 'pH iko chini: asidi inaongezeka (kimelishwa kupita kiasi?)',
    'alert.title.ph.high': 'pH iko juu',
    'alert.title.biogas_pressure_kpa.high': 'Shinikizo la gesi liko juu',
    'alert.title.methane_pct.low': 'Kiasi cha methane kiko chini',
    'alert.title.h2s_ppm.high': 'H₂S iko juu (huharibu vyuma, ni sumu)',
    'alert.title.fill_level_pct.high': 'Kituo cha ukusanyaji kinahitaji kukusanywa',
    'alert.title.battery_v.low': 'Betri ya kihisi iko chini',
    'alert.title.device.offline': 'Kihisi hakipo mtandaoni',
    'alert.title.device.cert_expiry': 'Cheti cha kihisi kinakaribia kuisha',
    'alert.guidance.temperature_c.low':
      'Kagua hita au kizuia-joto na ufunike kichachuzi usiku; lisha kidogo hadi kipate joto.',
    'alert.guidance.temperature_c.high':
      'Weka kivuli juu ya kichachuzi na uhakikishe hita imezimwa; usiongeze maji ya moto wala mabaki ya chakula yaliyo moto.',
    'alert.guidance.ph.low':
      'Asidi inaongezeka kichachuzini: acha kulisha kwa siku chache, kisha lisha kidogo; ongeza chokaa au majivu ya kuni ukishauriwa tu.',
    'alert.guidance.ph.high':
      'Lisha mabaki mabichi ya chakula zaidi, na majivu au chokaa kidogo; pima pH tena kesho.',
    'alert.guidance.biogas_pressure_kpa.high':
      'Tumia au choma gesi sasa, na ukague bomba la gesi na vali kama zimeziba; weka moto mbali na mahali panapovuja.',
    'alert.guidance.methane_pct.low':
      'Kagua kama hewa inaingia kwenye mlango wa kulishia na kwenye hifadhi ya gesi, na ulishe kwa kiasi sawa; gesi duni huwaka vibaya.',
    'alert.guidance.h2s_ppm.high':
      'Fungua madirisha ya jikoni hewa iingie, na ubadilishe au usafishe kichujio cha H₂S; H₂S ni sumu na huharibu majiko.',
    'alert.guidance.fill_level_pct.high':
      'Mwaga pipa katika mzunguko unaofuata; likusanye leo ikiwa limekaribia kujaa.',
    'alert.guidance.battery_v.low': 'Badilisha au chaji betri ya kihisi katika ziara ijayo.',
    'alert.guidance.device.offline':
      'Hakikisha kihisi kina umeme na mtandao; kizime na kukiwasha tena kikiendelea kuwa nje ya mtandao.',
    'alert.guidance.device.cert_expiry':
      'Fanya upya cheti cha kihisi kabla hakijaisha (fundi: kibadilishe kwenye ukurasa wa kifaa au kwa CLI).',
    'alert.guidance.default':
      'Kagua kifaa na vipimo vyake; thibitisha tahadhari na uandike ulichofanya.',
    'alert.none': 'Hakuna tahadhari.',
    'alert.ackedBy': 'Imethibitishwa na {who} {ago}',
    'alert.note': 'Maelezo',
    'alert.notePlaceholder': 'Ulifanya nini?',
    'alert.acknowledge': 'Thibitisha',
    'alert.ackFailed': 'Imeshindikana kuthibitisha: {error}',
    'alert.sensor': 'kihisi {id}',
    'alert.times': 'mara {times}, ya mwisho',
    'alert.opened': 'ilianza {ago}',
    'alert.closedAgo': 'ilifungwa {ago}',
    'alert.minOffline': 'dakika {minutes} nje ya mtandao',
    'alert.status.closed': 'imefungwa',
    'alerts.open': 'Zilizo wazi',
    'alerts.recentlyClosed': 'Zilizofungwa hivi karibuni',
  },
});
