import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from factories import write_cifar, write_idx, write_mnist_like

from common.errors import SweepWarning
from trainables import DataNotFoundError, TrialConfig, load_dataset, read_raw
from trainables.data import DEBIAN_FASHION_MNIST
from trainables.raw_data import check_available


def test_digits_is_a_fixed_stratified_split():
    a, b = read_raw("digits"), read_raw("digits")
    assert a.train_x.shape == (1437, 1, 8, 8) and a.test_x.shape == (360, 1, 8, 8)
    assert np.array_equal(a.train_y, b.train_y) and np.array_equal(a.test_x, b.test_x)
    assert np.bincount(a.test_y).min() >= 35  # every class is in the test set


def test_digits_read_without_sklearn_equals_sklearns_own_split(monkeypatch):
    import subprocess
    import sys

    from trainables import raw_data

    imported = subprocess.run(
        [sys.executable, "-c", "import sys; from trainables import read_raw; read_raw('digits');"
         " print(sorted(m for m in sys.modules if m.startswith('sklearn')))"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert imported == "[]"  # no 2 s of imports
    fast, slow = read_raw("digits"), raw_data._read_digits_with_sklearn()
    for field in ("train_x", "train_y", "test_x", "test_y"):
        assert np.array_equal(getattr(fast, field), getattr(slow, field)), field
        assert getattr(fast, field).dtype == getattr(slow, field).dtype, field
    monkeypatch.setattr(raw_data, "_digits_table", lambda: None)  # the file moved: same data
    assert np.array_equal(read_raw("digits").test_x, slow.test_x)


def test_load_dataset_normalises_on_the_training_set():
    data = load_dataset(TrialConfig.from_dict({"dataset": "digits"}))
    assert data.train_x.dtype == torch.float32 and data.train_y.dtype == torch.int64
    assert data.train_x.mean().abs() < 1e-5
    assert data.train_x.std().item() == pytest.approx(1.0, abs=1e-3)
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dataset, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_like_loads_torchvision_layout(tmp_path, dataset, folder, compress):
    arrays = write_mnist_like(tmp_path / folder / "raw", compress=compress)
    data = load_dataset(TrialConfig.from_dict({"dataset": dataset, "data_dir": str(tmp_path)}))
    assert data.train_x.shape == (60, 1, 28, 28) and data.test_x.shape == (20, 1, 28, 28)
    assert data.train_y.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    raw = read_raw(dataset, str(tmp_path))
    assert np.array_equal(raw.train_x[:, 0], arrays["train-images-idx3-ubyte"])


def test_mnist_files_directly_in_data_dir(tmp_path):
    write_mnist_like(tmp_path, n_train=30)
    assert read_raw("mnist", str(tmp_path)).train_x.shape[0] == 30


def test_missing_mnist_names_folder_and_files(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        read_raw("mnist", str(tmp_path))
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "train-images-idx3-ubyte" in message


def test_truncated_idx_file_is_named(tmp_path):
    write_mnist_like(tmp_path / "MNIST" / "raw")
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataNotFoundError, match="train-images-idx3-ubyte: unreadable idx file"):
        read_raw("mnist", str(tmp_path))


@pytest.mark.parametrize("file, array, message", [
    ("train-labels-idx1-ubyte", np.arange(50) % 10, "50 labels for 60 images"),
    ("t10k-labels-idx1-ubyte", np.arange(20) % 12,
     "labels 0..11 where the dataset has classes 0..9"),
    ("train-images-idx3-ubyte", np.arange(60) % 10, "not an images file (its idx header says 1"),
])
def test_idx_files_that_do_not_fit_each_other_are_named(tmp_path, file, array, message):
    # before, fewer labels cut the training set unsaid, and the others failed mid-trial
    write_mnist_like(tmp_path)
    write_idx(tmp_path / file, array)
    with pytest.raises(DataNotFoundError, match=re.escape(f"{tmp_path / file}: {message}")):
        read_raw("mnist", str(tmp_path))


def test_cifar_labels_beyond_the_classes_are_named(tmp_path):
    folder = write_cifar(tmp_path, classes=10)
    (folder / "test_batch").write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8),
                                                      "labels": [3, 10]}))
    with pytest.raises(DataNotFoundError, match="test_batch: labels 3..10 where the dataset "
                                                "has classes 0..9"):
        read_raw("cifar10", str(tmp_path))


def test_a_data_dir_under_home_is_found_written_with_a_tilde(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write_mnist_like(tmp_path / "data" / "MNIST" / "raw", n_train=30)
    check_available("mnist", "~/data")  # `--data-dir=~/data`: the shell leaves the ~ alone
    assert read_raw("mnist", "~/data").train_x.shape[0] == 30


def test_fashion_mnist_outside_data_dir_is_read_from_debian_with_a_warning(tmp_path, monkeypatch):
    import trainables.raw_data as raw_data

    debian = tmp_path / "debian"
    write_mnist_like(debian, n_train=30)
    monkeypatch.setattr(raw_data, "DEBIAN_FASHION_MNIST", debian)
    (tmp_path / "mine").mkdir()
    with pytest.warns(SweepWarning, match=re.escape(
            f"fashion_mnist: not in data_dir {tmp_path / 'mine'}; reading Debian's copy in "
            f"{debian}")):
        check_available("fashion_mnist", str(tmp_path / "mine"))
    assert read_raw("fashion_mnist", str(tmp_path / "mine")).source == str(debian)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_available("fashion_mnist")  # without a data_dir, Debian's copy is the place


@pytest.mark.parametrize("classes", [10, 100])
def test_cifar_loads_python_pickles(tmp_path, classes):
    write_cifar(tmp_path, classes=classes, per_file=20)
    name = "cifar10" if classes == 10 else "cifar100"
    data = load_dataset(TrialConfig.from_dict({"dataset": name, "data_dir": str(tmp_path)}))
    train_files = 5 if classes == 10 else 1
    assert data.train_x.shape == (20 * train_files, 3, 32, 32)
    assert data.test_x.shape == (20, 3, 32, 32)
    assert data.num_classes == classes
    assert data.test_y.tolist()[:3] == [(train_files + i) % classes for i in range(3)]


def test_cifar_missing_files_named(tmp_path):
    folder = write_cifar(tmp_path, classes=10)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataNotFoundError, match="it needs data_batch_3"):
        read_raw("cifar10", str(tmp_path))


def test_cifar_pickle_building_objects_is_refused(tmp_path):
    folder = write_cifar(tmp_path, classes=100)

    class Exploit:
        def __reduce__(self):
            return (print, ("this must never run",))

    (folder / "train").write_bytes(pickle.dumps({"data": Exploit(), "fine_labels": []}))
    with pytest.raises(DataNotFoundError, match="refusing to load builtins.print"):
        read_raw("cifar100", str(tmp_path))


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist")
def test_fashion_mnist_found_in_debian_package_without_data_dir():
    raw = read_raw("fashion_mnist")
    assert raw.train_x.shape == (60000, 1, 28, 28) and raw.test_x.shape == (10000, 1, 28, 28)
    assert np.bincount(raw.train_y).tolist() == [6000] * 10


def test_a_failed_download_is_one_line_and_leaves_no_empty_folders(tmp_path, monkeypatch):
    import socket

    import torchvision.datasets as tvd

    with socket.socket() as probe:  # the only mirror: a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setattr(tvd.MNIST, "mirrors", [f"http://127.0.0.1:{closed}/"])
    (tmp_path / "kept").mkdir()  # the user's own folder stays
    with pytest.raises(DataNotFoundError) as caught:
        read_raw("mnist", str(tmp_path / "data"), download=True)
    message = str(caught.value)
    assert message.startswith(f"mnist: download into {tmp_path / 'data'} failed (")
    assert "\n" not in message and "Connection refused" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
