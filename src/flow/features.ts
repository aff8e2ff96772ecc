import { CIC_FEATURES, originalColumnName } from '../ingest/columns.js';

/**
 * The flow columns NADIR writes: the corrected CICFlowMeter feature set, with the names of
 * `cicids2017_improved_sampled` (so models trained on it score pcap output directly), and the
 * MachineLearningCVE names for `--cic-compat original`. Definitions: docs/features.md.
 */

/** Identifier columns first, then the CIC features, in the corrected release's order. */
export const FLOW_COLUMNS = [
  'Flow ID',
  'Src IP',
  'Src Port',
  'Dst IP',
  'Dst Port',
  'Protocol',
  'Timestamp',
  ...CIC_FEATURES.filter((c) => c !== 'Protocol'),
] as const;

export type FlowColumn = (typeof FLOW_COLUMNS)[number];

/** Index of each column in FLOW_COLUMNS. */
export const COL = Object.fromEntries(FLOW_COLUMNS.map((c, i) => [c, i])) as Record<FlowColumn, number>;

/** Columns the original CICFlowMeter (MachineLearningCVE) does not have. */
const NOT_IN_ORIGINAL = new Set([
  'Fwd RST Flags',
  'Bwd RST Flags',
  'ICMP Code',
  'ICMP Type',
  'Total TCP Flow Time',
]);

/** Header names: corrected CICFlowMeter (`improved`) or MachineLearningCVE (`original`). */
export function flowHeader(mode: 'improved' | 'original'): { names: string[]; columns: number[] } {
  const names: string[] = [];
  const columns: number[] = [];
  FLOW_COLUMNS.forEach((c, i) => {
    if (mode === 'original' && NOT_IN_ORIGINAL.has(c)) return;
    names.push(mode === 'original' ? originalColumnName(c) : c);
    columns.push(i);
  });
  return { names, columns };
}
