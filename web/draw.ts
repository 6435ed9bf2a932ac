/**
 * The draw-a-digit pad: white round-capped strokes on a black 280×280 canvas (ten times MNIST's
 * 28×28, white on black like MNIST itself), drawn with Pointer Events so mouse, pen and touch all
 * work; the pointer is captured so a stroke that leaves the canvas keeps drawing. Whenever the
 * drawing changes, at most once per animation frame, the pad reads its pixels back and hands
 * `onChange` the MNIST-style 28×28 digit (preprocessDigit ∘ inkFromRgba), or null when empty.
 *
 * Hot handlers (pointermove) only draw: the canvas's position and scale are measured once per
 * stroke, on pointerdown, so no handler forces a layout.
 */
import { inkFromRgba, preprocessDigit } from '../src/data/preprocess.js';

/** Stroke width in canvas pixels: 20 px at 280 px is MNIST's pen (≈ 2 px of 28) scaled ×10. */
const STROKE_WIDTH = 20;
const BACKGROUND = '#000';
const INK = '#fff';

type Point = { x: number; y: number };

export interface DrawPadEvents {
  /** The drawing changed; `onChange` follows on the next animation frame. */
  onDirty?: () => void;
  /** The preprocessed 28×28 digit (uint8, white on black), or null for an empty pad. */
  onChange: (digit: Uint8Array | null) => void;
}

export class DrawPad {
  private readonly context: CanvasRenderingContext2D;
  private pointerId: number | undefined;
  private last: Point = { x: 0, y: 0 };
  /** Page-to-canvas mapping, measured at the start of each stroke. */
  private origin = { left: 0, top: 0, scaleX: 1, scaleY: 1 };
  private frame = 0;
  private empty = true;

  constructor(
    readonly canvas: HTMLCanvasElement,
    private readonly events: DrawPadEvents,
  ) {
    // Read back every frame while drawing: keep the canvas in CPU memory.
    this.context = canvas.getContext('2d', { willReadFrequently: true })!;
    this.context.lineCap = 'round';
    this.context.lineJoin = 'round';
    this.context.lineWidth = STROKE_WIDTH;
    this.context.strokeStyle = INK;
    this.context.fillStyle = INK;
    this.paintBackground();
    canvas.addEventListener('pointerdown', (e) => this.down(e));
    canvas.addEventListener('pointermove', (e) => this.move(e));
    canvas.addEventListener('pointerup', (e) => this.up(e));
    canvas.addEventListener('pointercancel', (e) => this.up(e));
    canvas.addEventListener('lostpointercapture', (e) => this.up(e));
  }

  /** Wipe the pad (onChange then reports null). */
  clear(): void {
    this.pointerId = undefined;
    this.paintBackground();
    this.empty = true;
    this.changed();
  }

  /** Report the current drawing again (e.g. when the model changed). */
  refresh(): void {
    this.changed();
  }

  private paintBackground(): void {
    const { width, height } = this.canvas;
    this.context.save();
    this.context.fillStyle = BACKGROUND;
    this.context.fillRect(0, 0, width, height);
    this.context.restore();
  }

  private toCanvas(e: PointerEvent): Point {
    return {
      x: (e.clientX - this.origin.left) * this.origin.scaleX,
      y: (e.clientY - this.origin.top) * this.origin.scaleY,
    };
  }

  private down(e: PointerEvent): void {
    if (e.pointerType === 'mouse' && e.button !== 0) return;
    if (this.pointerId !== undefined) return; // one stroke at a time (a second finger is ignored)
    e.preventDefault();
    try {
      this.canvas.setPointerCapture(e.pointerId);
    } catch {
      // Synthetic events (scripts, tests) have no active pointer to capture; draw uncaptured.
    }
    this.pointerId = e.pointerId;
    const rect = this.canvas.getBoundingClientRect();
    this.origin = {
      left: rect.left,
      top: rect.top,
      scaleX: this.canvas.width / rect.width,
      scaleY: this.canvas.height / rect.height,
    };
    this.last = this.toCanvas(e);
    // A tap is a dot: a zero-length line would draw nothing.
    this.context.beginPath();
    this.context.arc(this.last.x, this.last.y, STROKE_WIDTH / 2, 0, 2 * Math.PI);
    this.context.fill();
    this.empty = false;
    this.changed();
  }

  private move(e: PointerEvent): void {
    if (e.pointerId !== this.pointerId) return;
    // Coalesced events keep fast strokes smooth when the browser merges moves into one frame.
    const moves = e.getCoalescedEvents?.() ?? [];
    this.context.beginPath();
    this.context.moveTo(this.last.x, this.last.y);
    for (const m of moves.length > 0 ? moves : [e]) {
      this.last = this.toCanvas(m);
      this.context.lineTo(this.last.x, this.last.y);
    }
    this.context.stroke();
    this.changed();
  }

  private up(e: PointerEvent): void {
    if (e.pointerId !== this.pointerId) return;
    this.pointerId = undefined;
    if (this.canvas.hasPointerCapture(e.pointerId)) this.canvas.releasePointerCapture(e.pointerId);
  }

  private changed(): void {
    if (this.frame !== 0) return;
    this.events.onDirty?.();
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.events.onChange(this.empty ? null : this.digit());
    });
  }

  private digit(): Uint8Array | null {
    const { width, height } = this.canvas;
    const rgba = this.context.getImageData(0, 0, width, height).data;
    return preprocessDigit(inkFromRgba(rgba, width, height), width, height);
  }
}
