/** Both languages of one area, with the same keys. */
export type Part<K extends string> = {
  readonly en: Record<K, string>;
  readonly sw: Record<K, string>;
};

/** Type-checks a part: Swahili must give exactly the keys English gives. */
export function definePart<const E extends Record<string, string>>(part: {
  en: E;
  sw: { [K in keyof E]: string };
}): Part<Extract<keyof E, string>> {
  return part;
}
