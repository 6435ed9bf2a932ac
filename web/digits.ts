/**
 * Drawing 28×28 digits (uint8, white on black, as the datasets store them) to canvases: the grid
 * of test digits with the model's predictions, and the magnified network input beside the pad.
 */
import type { TestImages } from '../src/browser/client.js';

const SIDE = 28;
const PIXELS = SIDE * SIDE;

/** Paint one 28×28 grey digit onto a 28×28 canvas (CSS scales it up, pixelated). */
export function paintDigit(canvas: HTMLCanvasElement, pixels: Uint8Array, offset = 0): void {
  const context = canvas.getContext('2d')!;
  const image = context.createImageData(SIDE, SIDE);
  const rgba = image.data;
  for (let i = 0; i < PIXELS; i++) {
    const v = pixels[offset + i]!;
    rgba[4 * i] = v;
    rgba[4 * i + 1] = v;
    rgba[4 * i + 2] = v;
    rgba[4 * i + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}

/**
 * Replace `container`'s children by one figure per test digit: the image and the prediction under
 * it; a wrong prediction gets the class "wrong" and reads "pred/label". Each figure carries
 * data-label and data-prediction; the container, data-count and data-errors.
 */
export function renderDigitGrid(container: HTMLElement, test: TestImages): void {
  const figures: HTMLElement[] = [];
  let errors = 0;
  for (let i = 0; i < test.labels.length; i++) {
    const label = test.labels[i]!;
    const prediction = test.predictions?.[i];
    const figure = document.createElement('figure');
    figure.className = 'digit';
    figure.dataset.label = String(label);
    const canvas = document.createElement('canvas');
    canvas.width = SIDE;
    canvas.height = SIDE;
    paintDigit(canvas, test.images, i * PIXELS);
    const caption = document.createElement('figcaption');
    if (prediction === undefined) {
      caption.textContent = `label ${label}`;
    } else {
      figure.dataset.prediction = String(prediction);
      if (prediction === label) {
        caption.textContent = String(prediction);
      } else {
        errors++;
        figure.classList.add('wrong');
        caption.textContent = `${prediction}/${label}`;
        figure.title = `predicted ${prediction}, label ${label}`;
      }
    }
    figure.append(canvas, caption);
    figures.push(figure);
  }
  container.replaceChildren(...figures);
  container.dataset.count = String(figures.length);
  container.dataset.errors = String(errors);
}
