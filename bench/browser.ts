/**
 * `npm run bench:browser`: training speed of the same model and batch size in Node and in
 * Chromium's worker, alternating (Node, Chromium, Node, Chromium …) so the machine's drift hits
 * both alike. One epoch of mlp-256-128 (Adam, batch 32) on the 60,000 MNIST images per round; the
 * Chromium figure is the worker's own epoch timing, like Node's (data loading excluded).
 * `THREADS=N` runs both on N threads (Node: createEngine({ threads }); Chromium: ?threads=N on the
 * cross-origin isolated demo).
 */
import { loadMnist } from '../src/data/mnist.js';
import { createEngine } from '../src/engine/node.js';
import { createModel } from '../src/nn/create.js';
import { preset } from '../src/nn/presets.js';
import { fit } from '../src/train/fit.js';
import { haveChromium, openDemo, CHROMIUM } from '../web/harness.js';
import type { TrainerClient } from '../src/browser/client.js';
import { median } from './timing.js';

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const THREADS = Number(process.env.THREADS ?? 1);

async function main(): Promise<void> {
  if (!haveChromium()) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium`);
  const spec = preset('mlp-256-128')!;
  const options = {
    epochs: 1,
    batchSize: 32,
    seed: 1,
    optimizer: { type: 'adam' as const, learningRate: 1e-3 },
  };
  const data = loadMnist();
  const demo = await openDemo(['mnist']);
  try {
    if (THREADS !== 1) {
      await demo.page.goto(`${demo.url}?threads=${THREADS}`);
      await demo.page.waitForSelector('body[data-state="ready"]', { timeout: 60_000 });
      const used = await demo.page.getAttribute('body', 'data-threads');
      if (used !== String(THREADS)) {
        throw new Error(
          `Chromium runs ${used} threads: ${await demo.page.textContent('#threads-notice')}`,
        );
      }
    }
    await demo.page.evaluate(async () => {
      const { client } = (window as unknown as { mnistDemo: { client: TrainerClient } }).mnistDemo;
      await client.loadData('mnist', './data/');
    });
    const node: number[] = [];
    const chromium: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const engine = createEngine({ threads: THREADS });
      const model = createModel(spec, { seed: 1, engine });
      const { history } = fit(model, data, options);
      engine.close();
      node.push(history[0]!.samplesPerSecond);
      const browserRate = await demo.page.evaluate(
        async ({ spec, options }) => {
          const { client } = (window as unknown as { mnistDemo: { client: TrainerClient } })
            .mnistDemo;
          const result = await client.train(spec, options);
          return result.history[0]!.samplesPerSecond;
        },
        { spec, options },
      );
      chromium.push(browserRate);
      console.log(
        `round ${round}: Node ${Math.round(node.at(-1)!)} samples/s, Chromium ${Math.round(browserRate)} samples/s`,
      );
    }
    const ratio = median(chromium) / median(node);
    console.log(
      `\nmlp-256-128, Adam, batch 32, one epoch of 60,000, ${THREADS} thread(s): median Node ${Math.round(median(node))} samples/s, ` +
        `Chromium ${Math.round(median(chromium))} samples/s — Chromium/Node = ${ratio.toFixed(2)}`,
    );
  } finally {
    await demo.close();
  }
}

await main();
