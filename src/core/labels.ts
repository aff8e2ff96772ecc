/**
 * Canonical threat-type vocabulary. Datasets spell the same attack many ways
 * (`PortScan` / `Portscan`, `Bot` / `Botnet`, `Web Attack – Sql Injection` with an en dash,
 * a cp1252 0x96 byte or a U+FFFD replacement character); labels are normalised to one name
 * here and the raw text is kept beside it.
 */
export const BENIGN = 'BENIGN';

/** Canonical names, in display order. Labels outside this list are kept (tidied) as they are. */
export const THREAT_TYPES = [
  BENIGN,
  'DDoS',
  'DoS Hulk',
  'DoS GoldenEye',
  'DoS Slowloris',
  'DoS Slowhttptest',
  'PortScan',
  'FTP-Patator',
  'SSH-Patator',
  'Botnet',
  'Web Attack - Brute Force',
  'Web Attack - XSS',
  'Web Attack - SQL Injection',
  'Infiltration',
  'Infiltration - PortScan',
  'Heartbleed',
] as const;

/** Lower-case alphanumeric key used to match spellings. */
export function labelKey(raw: string): string {
  return raw.toLowerCase().replace(/[^a-z0-9]+/g, '');
}

const CANONICAL = new Map<string, string>();
for (const t of THREAT_TYPES) CANONICAL.set(labelKey(t), t);
const SYNONYMS: Record<string, string> = {
  bot: 'Botnet',
  botnet: 'Botnet',
  portscan: 'PortScan',
  webattackbruteforce: 'Web Attack - Brute Force',
  webattacksqlinjection: 'Web Attack - SQL Injection',
  webattackxss: 'Web Attack - XSS',
  infiltrationportscan: 'Infiltration - PortScan',
  ddos: 'DDoS',
};
for (const [k, v] of Object.entries(SYNONYMS)) CANONICAL.set(k, v);

/**
 * The canonical name for a raw label: a known threat type, or the raw text tidied
 * (trimmed, any dash-like or undecodable separator between words turned into ` - `).
 */
export function canonicalLabel(raw: string): string {
  const key = labelKey(raw);
  const known = CANONICAL.get(key);
  if (known) return known;
  return tidyLabel(raw);
}

/** Trim, collapse whitespace, and turn en/em dashes, U+FFFD and mojibake dashes into `-`. */
export function tidyLabel(raw: string): string {
  return raw
    .replace(/\u00e2\u0080\u0093|\u00e2\u20ac\u201c/g, '-')
    .replace(/[\u2010-\u2015\u0096\u0097\ufffd]/g, '-')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Default spellings of the benign class, matched case-insensitively. */
export const DEFAULT_BENIGN_VALUES = ['BENIGN', 'normal', 'Normal', 'benign', '0', 'false', 'legitimate'];

export class LabelPolicy {
  private readonly benignKeys: Set<string>;
  private readonly cache = new Map<string, string>();

  /** @param benign the raw values that mean "normal traffic" (compared after tidying, case-insensitive) */
  constructor(readonly benign: readonly string[] = DEFAULT_BENIGN_VALUES) {
    this.benignKeys = new Set(benign.map((b) => tidyLabel(b).toLowerCase()));
  }

  /** Canonical label for a raw value; every benign spelling becomes `BENIGN`. */
  canonical(raw: string): string {
    let c = this.cache.get(raw);
    if (c === undefined) {
      c = this.benignKeys.has(tidyLabel(raw).toLowerCase()) ? BENIGN : canonicalLabel(raw);
      if (this.cache.size < 10_000) this.cache.set(raw, c);
    }
    return c;
  }

  isBenign(canonical: string): boolean {
    return canonical === BENIGN;
  }
}
