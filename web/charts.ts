/**
 * Live training charts (Chart.js): loss — train per batch, train and test per epoch — and accuracy
 * — train and test per epoch — on one x axis measured in epochs (batch b of epoch e sits at
 * e − 1 + (b + 1) / batches). Events only append to the data arrays; the charts redraw at most
 * every UPDATE_INTERVAL_MS, without animation, so drawing never competes with the event stream.
 * Each canvas carries its point counts in data attributes (data-batch-points, data-epoch-points)
 * for tests and the curious.
 */
import {
  Chart,
  Legend,
  LinearScale,
  LineController,
  LogarithmicScale,
  LineElement,
  PointElement,
  Ticks,
  Tooltip,
  type ChartDataset,
  type ChartOptions,
  type Scale,
  type Tick,
} from 'chart.js';
import type { BatchEvent, EpochRecord } from '../src/train/fit.js';

Chart.register(
  LineController,
  LineElement,
  PointElement,
  LinearScale,
  LogarithmicScale,
  Legend,
  Tooltip,
);

/** Redraw at most four times a second; batch events arrive at up to ten. */
const UPDATE_INTERVAL_MS = 250;

type Point = { x: number; y: number };
type LineDataset = ChartDataset<'line', Point[]>;

const COLOURS = { train: '#1f6feb', trainBatch: 'rgba(31, 111, 235, 0.35)', test: '#d1242f' };

function series(label: string, colour: string, perBatch = false): LineDataset {
  return {
    label,
    data: [],
    borderColor: colour,
    backgroundColor: colour,
    borderWidth: perBatch ? 1 : 2,
    pointRadius: perBatch ? 0 : 3,
    pointHoverRadius: perBatch ? 0 : 4,
    tension: 0,
  };
}

/** Chart.js's choice of labelled log ticks (1, 2, 5 × 10ⁿ), written 0.3 rather than 0.300. */
function logTick(this: Scale, value: number | string, index: number, ticks: Tick[]): string {
  const label = Ticks.formatters.logarithmic.call(this, Number(value), index, ticks);
  return label === '' ? '' : String(Number(value));
}

function options(
  yTitle: string,
  y: { type: 'linear' | 'logarithmic'; min?: number; max?: number },
): ChartOptions<'line'> {
  return {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    parsing: false,
    normalized: true,
    interaction: { mode: 'nearest', intersect: false },
    plugins: { legend: { position: 'bottom', labels: { boxWidth: 12, boxHeight: 2 } } },
    scales: {
      x: {
        type: 'linear',
        min: 0,
        title: { display: true, text: 'epoch' },
        ticks: { stepSize: 1 },
      },
      y: {
        ...y,
        title: { display: true, text: yTitle },
        ...(y.type === 'logarithmic' ? { ticks: { callback: logTick } } : {}),
      },
    },
  };
}

export class TrainingCharts {
  readonly loss: Chart<'line', Point[]>;
  readonly accuracy: Chart<'line', Point[]>;
  private readonly trainBatchLoss = series('train (per batch)', COLOURS.trainBatch, true);
  private readonly trainLoss = series('train (epoch)', COLOURS.train);
  private readonly testLoss = series('test', COLOURS.test);
  private readonly trainAccuracy = series('train', COLOURS.train);
  private readonly testAccuracy = series('test', COLOURS.test);
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastUpdate = 0;

  constructor(
    private readonly lossCanvas: HTMLCanvasElement,
    private readonly accuracyCanvas: HTMLCanvasElement,
  ) {
    this.loss = new Chart(lossCanvas, {
      type: 'line',
      data: { datasets: [this.trainBatchLoss, this.trainLoss, this.testLoss] },
      // Logarithmic: the first batches' loss (≈ 2.3) would flatten the later epochs' (≈ 0.05).
      options: options('loss (log scale)', { type: 'logarithmic' }),
    });
    this.accuracy = new Chart(accuracyCanvas, {
      type: 'line',
      data: { datasets: [this.trainAccuracy, this.testAccuracy] },
      options: options('accuracy (%)', { type: 'linear', max: 100 }),
    });
  }

  /** Empty every series and set the x axis to `epochs`. */
  reset(epochs: number): void {
    for (const d of [
      this.trainBatchLoss,
      this.trainLoss,
      this.testLoss,
      this.trainAccuracy,
      this.testAccuracy,
    ]) {
      d.data.length = 0;
    }
    for (const chart of [this.loss, this.accuracy]) chart.options.scales!.x!.max = epochs;
    this.flush();
  }

  addBatch(e: BatchEvent): void {
    this.trainBatchLoss.data.push({ x: e.epoch - 1 + (e.batch + 1) / e.batches, y: e.loss });
    this.schedule();
  }

  addEpoch(r: EpochRecord): void {
    this.trainLoss.data.push({ x: r.epoch, y: r.trainLoss });
    this.trainAccuracy.data.push({ x: r.epoch, y: 100 * r.trainAccuracy });
    if (r.testLoss !== undefined) this.testLoss.data.push({ x: r.epoch, y: r.testLoss });
    if (r.testAccuracy !== undefined)
      this.testAccuracy.data.push({ x: r.epoch, y: 100 * r.testAccuracy });
    this.schedule();
  }

  /** Redraw now (end of training), cancelling any pending throttled redraw. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.lastUpdate = performance.now();
    this.loss.update('none');
    this.accuracy.update('none');
    this.lossCanvas.dataset.batchPoints = String(this.trainBatchLoss.data.length);
    this.lossCanvas.dataset.epochPoints = String(this.trainLoss.data.length);
    this.accuracyCanvas.dataset.epochPoints = String(this.testAccuracy.data.length);
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    const wait = Math.max(0, UPDATE_INTERVAL_MS - (performance.now() - this.lastUpdate));
    this.timer = setTimeout(() => this.flush(), wait);
  }
}
