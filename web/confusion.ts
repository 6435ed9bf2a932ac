/**
 * The confusion matrix as a 10×10 table: rows are the true digits, columns the predictions, each
 * cell a count shaded by its share of the row; the diagonal (correct answers) is green, the rest
 * red. The table's data-total holds the number of digits counted.
 */

/** Fill `table` from confusion[actual][predicted]. */
export function renderConfusion(table: HTMLTableElement, confusion: number[][]): void {
  const classes = confusion.length;
  const head = document.createElement('thead');
  const headRow = head.insertRow();
  const corner = document.createElement('th');
  corner.textContent = 'true ╲ pred';
  corner.className = 'corner';
  headRow.append(corner);
  for (let p = 0; p < classes; p++) {
    const th = document.createElement('th');
    th.textContent = String(p);
    th.scope = 'col';
    headRow.append(th);
  }

  const body = document.createElement('tbody');
  let total = 0;
  let correct = 0;
  for (let a = 0; a < classes; a++) {
    const row = body.insertRow();
    const th = document.createElement('th');
    th.textContent = String(a);
    th.scope = 'row';
    row.append(th);
    const counts = confusion[a]!;
    const rowTotal = counts.reduce((s, c) => s + c, 0);
    for (let p = 0; p < classes; p++) {
      const count = counts[p] ?? 0;
      const cell = row.insertCell();
      cell.textContent = String(count);
      const share = rowTotal > 0 ? count / rowTotal : 0;
      if (a === p) {
        cell.className = 'diagonal';
        cell.style.setProperty('--share', share.toFixed(3));
      } else if (count > 0) {
        cell.className = 'off';
        // Errors are rare; a square root makes one or two of them visible next to the diagonal.
        cell.style.setProperty('--share', Math.sqrt(share).toFixed(3));
      }
      total += count;
      if (a === p) correct += count;
    }
  }
  table.replaceChildren(head, body);
  table.dataset.total = String(total);
  table.dataset.correct = String(correct);
}
