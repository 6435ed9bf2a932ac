/**
 * Training curves as an SVG image, drawn with Vega-Lite (rendered headless, no canvas needed):
 * loss (left) and accuracy (right) per epoch, one colour per run, train dashed and test solid.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { EpochRecord } from '../train/fit.js';

export interface PlotSeries {
  label: string;
  history: readonly EpochRecord[];
}

interface Point {
  run: string;
  split: 'train' | 'test';
  epoch: number;
  loss: number;
  accuracy: number;
}

/** An SVG document with loss and accuracy curves of each series. */
export async function plotCurves(series: readonly PlotSeries[], title: string): Promise<string> {
  const values: Point[] = [];
  for (const s of series) {
    for (const r of s.history) {
      values.push({
        run: s.label,
        split: 'train',
        epoch: r.epoch,
        loss: r.trainLoss,
        accuracy: r.trainAccuracy,
      });
      if (r.testAccuracy !== undefined && r.testLoss !== undefined) {
        values.push({
          run: s.label,
          split: 'test',
          epoch: r.epoch,
          loss: r.testLoss,
          accuracy: r.testAccuracy,
        });
      }
    }
  }
  const encoding = (field: 'loss' | 'accuracy', scaleType: 'log' | 'linear') => ({
    x: { field: 'epoch', type: 'quantitative' as const, title: 'epoch', axis: { tickMinStep: 1 } },
    y: {
      field,
      type: 'quantitative' as const,
      title: field === 'loss' ? 'loss (log scale)' : 'accuracy',
      scale: scaleType === 'log' ? { type: scaleType } : { type: scaleType, zero: false },
      ...(field === 'accuracy' ? { axis: { format: '.1%' } } : {}),
    },
    color: { field: 'run', type: 'nominal' as const, title: null },
    strokeDash: {
      field: 'split',
      type: 'nominal' as const,
      title: null,
      sort: ['test', 'train'],
      legend: null, // explained in the subtitle: dash symbols do not render clearly in legends
    },
  });
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle: 'solid: test set, dashed: training set' },
    data: { values },
    hconcat: [
      {
        width: 360,
        height: 260,
        mark: { type: 'line', point: values.length < 200 },
        encoding: encoding('loss', 'log'),
      },
      {
        width: 360,
        height: 260,
        mark: { type: 'line', point: values.length < 200 },
        encoding: encoding('accuracy', 'linear'),
      },
    ],
    config: { font: 'sans-serif' },
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
