"""Training throughput of the pipeline against a bare loop and a conventional DataLoader loop.

Side by side in one run, interleaved, on Fashion-MNIST (Debian's files, or --data-dir) with the
default small CNN (width 16), batch 64, Adam:
  pipeline    trainables.TrialRunner (ordinary training, stopped by a FLOPs budget), its own
              train_time_s (training steps only, evaluations excluded)
  bare        a hand-written loop over the same device tensors and model: randperm, index, step
  dataloader  a torchvision-style Dataset (uint8 array -> ToTensor -> Normalize per sample) and a
              DataLoader(shuffle=True, num_workers=0), the conventional recipe
Prints samples/s (median over repeats) and the ratios.  Usage:
  python bench/throughput.py [--samples 20000] [--repeats 3] [--device cpu|cuda] [--smoke-test]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch import nn

from trainables import TrialConfig, TrialRunner, build_model, read_raw
from trainables.data import to_device
from trainables.flops import train_flops_per_sample


def time_pipeline(config: TrialConfig, raw, samples: int, device: str) -> float:
    model = build_model(config, raw.train_x.shape[1:], raw.num_classes)
    budget = train_flops_per_sample(model, raw.train_x.shape[1:]) * samples
    config = TrialConfig.from_dict({**config.to_dict(), "flops_budget": budget})
    records = TrialRunner(config, raw=raw, device=device).run()
    return records[-1]["samples_seen"] / records[-1]["train_time_s"]


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_bare(config: TrialConfig, raw, samples: int, device: str) -> float:
    data = to_device(raw, device)
    model = build_model(config, data.input_shape, data.num_classes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(0)
    bs, seen = config.batch_size, 0
    _sync(device)
    start = time.perf_counter()
    while seen < samples:
        perm = torch.randperm(len(data.train_y), generator=generator).to(device)
        for lo in range(0, len(perm), bs):
            idx = perm[lo : lo + bs]
            loss = nn.functional.cross_entropy(model(data.train_x[idx]), data.train_y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(idx)
            if seen >= samples:
                break
    _sync(device)
    return seen / (time.perf_counter() - start)


def time_dataloader(config: TrialConfig, raw, samples: int, device: str) -> float:
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    class ImageDataset(Dataset):
        def __init__(self, images, labels):
            self.images, self.labels = images, labels
            self.transform = transforms.Compose(
                [transforms.ToTensor(), transforms.Normalize((0.2860,), (0.3530,))]
            )

        def __len__(self) -> int:
            return len(self.labels)

        def __getitem__(self, i):
            return self.transform(self.images[i, 0]), int(self.labels[i])

    loader = DataLoader(ImageDataset(raw.train_x, raw.train_y), batch_size=config.batch_size,
                        shuffle=True, num_workers=0)
    model = build_model(config, raw.train_x.shape[1:], raw.num_classes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    seen = 0
    _sync(device)
    start = time.perf_counter()
    while seen < samples:
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(y)
            if seen >= samples:
                break
    _sync(device)
    return seen / (time.perf_counter() - start)


METHODS = {"pipeline": time_pipeline, "bare": time_bare, "dataloader": time_dataloader}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--smoke-test", action="store_true", help="digits, tiny, one repeat")
    args = parser.parse_args()
    dataset = "digits" if args.smoke_test else "fashion_mnist"
    samples, repeats = (2_000, 1) if args.smoke_test else (args.samples, args.repeats)
    config = TrialConfig.from_dict({"dataset": dataset, "width": args.width,
                                    "finetune_epochs": 1000, "eval_every": 10**9,
                                    "device": args.device, "data_dir": args.data_dir})
    raw = read_raw(dataset, args.data_dir)
    for fn in METHODS.values():  # warm-up: allocator, kernels, thread pools
        fn(config, raw, min(samples, 2_000), args.device)
    rates: dict[str, list[float]] = {name: [] for name in METHODS}
    for _ in range(repeats):  # interleaved, so drift hits all methods alike
        for name, fn in METHODS.items():
            rates[name].append(fn(config, raw, samples, args.device))
    median = {name: statistics.median(r) for name, r in rates.items()}
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor()
    print(f"# {dataset}, cnn width {args.width}, batch {config.batch_size}, {samples} samples x "
          f"{repeats} repeats, device {args.device} ({device_name or platform.machine()}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| method | samples/s (median) | runs | pipeline / method |")
    print("|---|---|---|---|")
    for name in METHODS:
        runs = ", ".join(f"{r:,.0f}" for r in rates[name])
        ratio = median["pipeline"] / median[name]
        print(f"| {name} | {median[name]:,.0f} | {runs} | {ratio:.3f} |")


if __name__ == "__main__":
    main()
