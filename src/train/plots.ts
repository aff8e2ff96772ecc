/**
 * Evaluation plots as standalone SVG, rendered server-side with ECharts (the charting vocabulary
 * the dashboard shares): ROC curves per class on a log false-positive axis, where the operating
 * region of an anomaly detector lies, and score distributions of benign and attack rows with the
 * calibrated threshold.
 */
import { createRequire } from 'node:module';

/** ECharts is large: loaded on the first plot, not with every command. */
let echartsModule: typeof import('echarts') | null = null;
function echarts(): typeof import('echarts') {
  echartsModule ??= createRequire(import.meta.url)('echarts') as typeof import('echarts');
  return echartsModule;
}

export interface PlotData {
  title: string;
  threshold: number;
  /** ROC points per curve name (overall first). */
  roc: { name: string; points: [number, number][] }[];
  /** Score histogram: bin edges and counts per group. */
  histogram: { edges: number[]; groups: { name: string; counts: number[] }[] };
}

const MIN_FPR = 1e-4;

export function renderEvaluationSvg(p: PlotData, width = 1200, height = 520): string {
  const chart = echarts().init(null, null, { renderer: 'svg', ssr: true, width, height });
  const centers = p.histogram.edges.slice(0, -1).map((e, i) => (e + p.histogram.edges[i + 1]) / 2);
  chart.setOption({
    animation: false,
    backgroundColor: '#fff',
    title: [
      { text: p.title, left: 'center', top: 4, textStyle: { fontSize: 14 } },
      { text: 'ROC per class (vs BENIGN)', left: '4%', top: 28, textStyle: { fontSize: 12 } },
      { text: 'Score distribution (share of each group)', left: '56%', top: 28, textStyle: { fontSize: 12 } },
    ],
    legend: [
      {
        type: 'scroll',
        orient: 'vertical',
        left: '39%',
        top: 60,
        bottom: 40,
        textStyle: { fontSize: 10 },
        data: p.roc.map((r) => r.name),
      },
      { right: 20, top: 70, orient: 'vertical', data: p.histogram.groups.map((g) => g.name) },
    ],
    grid: [
      { left: '5%', right: '62%', top: 70, bottom: 50 },
      { left: '56%', right: '3%', top: 70, bottom: 50 },
    ],
    xAxis: [
      {
        type: 'log',
        min: MIN_FPR,
        max: 1,
        name: 'false-positive rate',
        nameLocation: 'middle',
        nameGap: 28,
        gridIndex: 0,
      },
      { type: 'value', name: 'score', nameLocation: 'middle', nameGap: 28, gridIndex: 1, scale: true },
    ],
    yAxis: [
      {
        type: 'value',
        min: 0,
        max: 1,
        name: 'detection rate',
        nameLocation: 'middle',
        nameGap: 32,
        gridIndex: 0,
      },
      { type: 'value', name: 'share of rows', nameLocation: 'middle', nameGap: 40, gridIndex: 1 },
    ],
    series: [
      ...p.roc.map((r, i) => ({
        name: r.name,
        type: 'line',
        xAxisIndex: 0,
        yAxisIndex: 0,
        showSymbol: false,
        step: 'end',
        lineStyle: { width: i === 0 ? 3 : 1.2 },
        // The log axis cannot show FPR 0: points there sit at its left edge.
        data: r.points.map(([f, t]) => [Math.max(f, MIN_FPR), t]),
      })),
      ...p.histogram.groups.map((g, i) => {
        const total = g.counts.reduce((a, b) => a + b, 0) || 1;
        return {
          name: g.name,
          type: 'line',
          step: 'middle',
          areaStyle: { opacity: 0.25 },
          showSymbol: false,
          xAxisIndex: 1,
          yAxisIndex: 1,
          data: centers.map((c, k) => [c, g.counts[k] / total]),
          markLine:
            i === 0
              ? {
                  symbol: 'none',
                  label: { formatter: `threshold ${p.threshold.toFixed(4)}` },
                  lineStyle: { type: 'dashed', color: '#c00' },
                  data: [{ xAxis: p.threshold }],
                }
              : undefined,
        };
      }),
    ],
  });
  const svg = chart.renderToSVGString();
  chart.dispose();
  return svg;
}

/** Equal-width histogram of values grouped by a key. */
export function histogram(
  values: ArrayLike<number>,
  group: (i: number) => number,
  names: string[],
  bins = 50,
): PlotData['histogram'] {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < values.length; i++) {
    if (values[i] < lo) lo = values[i];
    if (values[i] > hi) hi = values[i];
  }
  if (!(hi > lo)) hi = lo + 1;
  const edges = Array.from({ length: bins + 1 }, (_, k) => lo + ((hi - lo) * k) / bins);
  const counts = names.map(() => new Array<number>(bins).fill(0));
  for (let i = 0; i < values.length; i++) {
    const b = Math.min(bins - 1, Math.floor(((values[i] - lo) / (hi - lo)) * bins));
    counts[group(i)][b]++;
  }
  return { edges, groups: names.map((name, g) => ({ name, counts: counts[g] })) };
}
