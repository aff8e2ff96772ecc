/**
 * The column dictionary: canonical names of flow columns and the spellings used by
 * the tools and datasets that produce them, with each column's role.
 *
 * Canonical names are those of the corrected CICFlowMeter (the `cicids2017_improved` release),
 * which NADIR's own flow meter also writes. The original CICFlowMeter-V3 names
 * (MachineLearningCVE / TrafficLabelling, often with a leading space) map onto them, so a model
 * trained on one flavour scores the other wherever the columns exist.
 */
export type ColumnRole = 'id' | 'numeric' | 'categorical' | 'label' | 'label-meta' | 'drop';

/** Identifier columns: kept for display, never features unless `--keep` names them. */
export const ID_COLUMNS = ['id', 'Flow ID', 'Src IP', 'Src Port', 'Dst IP', 'Dst Port', 'Timestamp'] as const;

/** Id columns that hold numbers and become numeric features when kept. */
const NUMERIC_IDS = new Set(['Src Port', 'Dst Port', 'id']);

/** CIC flow features, canonical names, in the corrected CICFlowMeter's order. */
export const CIC_FEATURES = [
  'Protocol',
  'Flow Duration',
  'Total Fwd Packet',
  'Total Bwd packets',
  'Total Length of Fwd Packet',
  'Total Length of Bwd Packet',
  'Fwd Packet Length Max',
  'Fwd Packet Length Min',
  'Fwd Packet Length Mean',
  'Fwd Packet Length Std',
  'Bwd Packet Length Max',
  'Bwd Packet Length Min',
  'Bwd Packet Length Mean',
  'Bwd Packet Length Std',
  'Flow Bytes/s',
  'Flow Packets/s',
  'Flow IAT Mean',
  'Flow IAT Std',
  'Flow IAT Max',
  'Flow IAT Min',
  'Fwd IAT Total',
  'Fwd IAT Mean',
  'Fwd IAT Std',
  'Fwd IAT Max',
  'Fwd IAT Min',
  'Bwd IAT Total',
  'Bwd IAT Mean',
  'Bwd IAT Std',
  'Bwd IAT Max',
  'Bwd IAT Min',
  'Fwd PSH Flags',
  'Bwd PSH Flags',
  'Fwd URG Flags',
  'Bwd URG Flags',
  'Fwd RST Flags',
  'Bwd RST Flags',
  'Fwd Header Length',
  'Bwd Header Length',
  'Fwd Packets/s',
  'Bwd Packets/s',
  'Packet Length Min',
  'Packet Length Max',
  'Packet Length Mean',
  'Packet Length Std',
  'Packet Length Variance',
  'FIN Flag Count',
  'SYN Flag Count',
  'RST Flag Count',
  'PSH Flag Count',
  'ACK Flag Count',
  'URG Flag Count',
  'CWR Flag Count',
  'ECE Flag Count',
  'Down/Up Ratio',
  'Average Packet Size',
  'Fwd Segment Size Avg',
  'Bwd Segment Size Avg',
  'Fwd Bytes/Bulk Avg',
  'Fwd Packet/Bulk Avg',
  'Fwd Bulk Rate Avg',
  'Bwd Bytes/Bulk Avg',
  'Bwd Packet/Bulk Avg',
  'Bwd Bulk Rate Avg',
  'Subflow Fwd Packets',
  'Subflow Fwd Bytes',
  'Subflow Bwd Packets',
  'Subflow Bwd Bytes',
  'FWD Init Win Bytes',
  'Bwd Init Win Bytes',
  'Fwd Act Data Pkts',
  'Fwd Seg Size Min',
  'Active Mean',
  'Active Std',
  'Active Max',
  'Active Min',
  'Idle Mean',
  'Idle Std',
  'Idle Max',
  'Idle Min',
  'ICMP Code',
  'ICMP Type',
  'Total TCP Flow Time',
] as const;

/** Original CICFlowMeter-V3 spellings (MachineLearningCVE / TrafficLabelling) → canonical. */
const ALIASES: Record<string, string> = {
  'Source IP': 'Src IP',
  'Source Port': 'Src Port',
  'Destination IP': 'Dst IP',
  'Destination Port': 'Dst Port',
  'Total Fwd Packets': 'Total Fwd Packet',
  'Total Backward Packets': 'Total Bwd packets',
  'Total Length of Fwd Packets': 'Total Length of Fwd Packet',
  'Total Length of Bwd Packets': 'Total Length of Bwd Packet',
  'Min Packet Length': 'Packet Length Min',
  'Max Packet Length': 'Packet Length Max',
  'CWE Flag Count': 'CWR Flag Count',
  'Avg Fwd Segment Size': 'Fwd Segment Size Avg',
  'Avg Bwd Segment Size': 'Bwd Segment Size Avg',
  'Fwd Avg Bytes/Bulk': 'Fwd Bytes/Bulk Avg',
  'Fwd Avg Packets/Bulk': 'Fwd Packet/Bulk Avg',
  'Fwd Avg Bulk Rate': 'Fwd Bulk Rate Avg',
  'Bwd Avg Bytes/Bulk': 'Bwd Bytes/Bulk Avg',
  'Bwd Avg Packets/Bulk': 'Bwd Packet/Bulk Avg',
  'Bwd Avg Bulk Rate': 'Bwd Bulk Rate Avg',
  Init_Win_bytes_forward: 'FWD Init Win Bytes',
  Init_Win_bytes_backward: 'Bwd Init Win Bytes',
  act_data_pkt_fwd: 'Fwd Act Data Pkts',
  min_seg_size_forward: 'Fwd Seg Size Min',
};

/** The original CICFlowMeter-V3 (MachineLearningCVE) name of a canonical column. */
export function originalColumnName(canonical: string): string {
  for (const [alias, c] of Object.entries(ALIASES)) if (c === canonical) return alias;
  return canonical;
}

/** Label columns (first present wins, unless `--label` names one). */
export const LABEL_CANDIDATES = ['Label', 'label', 'class', 'attack_cat', 'Attack', 'attack_type'];
/** Columns derived from the label: they would leak it into features, so they are always dropped. */
const LABEL_META = ['Attempted Category', 'attack_cat', 'label', 'Label', 'class', 'attack_type', 'Attack'];

/** Matching key: case-, space- and underscore-insensitive. */
export function columnKey(name: string): string {
  return name.toLowerCase().replace(/[\s_]+/g, '');
}

const CANONICAL_BY_KEY = new Map<string, string>();
for (const c of [...ID_COLUMNS, ...CIC_FEATURES]) CANONICAL_BY_KEY.set(columnKey(c), c);
for (const [alias, c] of Object.entries(ALIASES)) CANONICAL_BY_KEY.set(columnKey(alias), c);
const LABEL_META_KEYS = new Set(LABEL_META.map(columnKey));
const ID_KEYS = new Set<string>(ID_COLUMNS.map(columnKey));

/** Canonical name for a header cell: known spellings map to the canonical name, others are trimmed. */
export function canonicalColumn(raw: string): string {
  const trimmed = raw.trim();
  return CANONICAL_BY_KEY.get(columnKey(trimmed)) ?? trimmed;
}

/** True for names in the CIC dictionary (either flavour). */
export function isKnownCicColumn(canonical: string): boolean {
  return CANONICAL_BY_KEY.has(columnKey(canonical));
}

export function isIdColumn(canonical: string): boolean {
  return ID_KEYS.has(columnKey(canonical));
}

export function isNumericId(canonical: string): boolean {
  return NUMERIC_IDS.has(canonical);
}

export function isLabelMeta(canonical: string): boolean {
  return LABEL_META_KEYS.has(columnKey(canonical));
}

/** Categorical CIC columns (a protocol number is a category, not a magnitude). */
export const CIC_CATEGORICAL = new Set(['Protocol']);

/** Generic identifier-looking names in other datasets (UNSW-NB15, NSL-KDD, Zeek exports). */
const GENERIC_ID_KEYS = new Set(
  [
    'srcip',
    'dstip',
    'sport',
    'dsport',
    'stime',
    'ltime',
    'ts',
    'uid',
    'src_ip',
    'dst_ip',
    'src_port',
    'dst_port',
  ].map(columnKey),
);

export function looksLikeId(canonical: string): boolean {
  return isIdColumn(canonical) || GENERIC_ID_KEYS.has(columnKey(canonical));
}
