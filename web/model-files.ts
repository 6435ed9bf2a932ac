/**
 * Model files on the page: saving the worker's .safetensors bytes as a download, and taking files
 * from a file input or from a drop anywhere on the page. Validation is the worker's job
 * (TrainerClient.importModel); this module only moves bytes and names.
 */

/** Offer `bytes` as a file download named `fileName`. */
export function downloadBytes(bytes: Uint8Array, fileName: string): void {
  const blob = new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' });
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // The download has started from the URL by now; give slow browsers a moment before revoking.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * The architecture's name from a model file that the worker has accepted (the spec stored in its
 * safetensors metadata), falling back to the file name without its extension.
 */
export function modelName(bytes: Uint8Array, fileName: string): string {
  const fallback = fileName.replace(/^mnist-wasm-/, '').replace(/\.safetensors$/i, '');
  try {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const headerLength = Number(view.getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as {
      __metadata__?: { spec?: string };
    };
    const name = (JSON.parse(header.__metadata__?.spec ?? '{}') as { name?: unknown }).name;
    return typeof name === 'string' && name !== '' ? name : fallback;
  } catch {
    return fallback;
  }
}

/**
 * Call `onFile` with a file dropped anywhere on `target`; while a file is dragged over it,
 * `target` has the class "dragging" (styled as a drop hint).
 */
export function acceptDroppedFiles(target: HTMLElement, onFile: (file: File) => void): void {
  let depth = 0; // dragenter/dragleave also fire for every child crossed
  const carriesFiles = (e: DragEvent): boolean => e.dataTransfer?.types.includes('Files') ?? false;
  target.addEventListener('dragenter', (e) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    if (depth++ === 0) target.classList.add('dragging');
  });
  target.addEventListener('dragover', (e) => {
    if (!carriesFiles(e)) return;
    e.preventDefault(); // allows the drop
    e.dataTransfer!.dropEffect = 'copy';
  });
  target.addEventListener('dragleave', (e) => {
    if (!carriesFiles(e)) return;
    if (--depth <= 0) {
      depth = 0;
      target.classList.remove('dragging');
    }
  });
  target.addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    target.classList.remove('dragging');
    const file = e.dataTransfer?.files[0];
    if (file) onFile(file);
  });
}
