"""yunjey/stargan's CelebA test split, reproduced from a prepared dataset's row names.

yunjey's data_loader reads list_attr_celeba.txt, shuffles its image lines with `random.seed(1234);
random.shuffle(lines)` and makes the first 1999 of them (`(i + 1) < 2000`) the test set, the rest the
training set. The permutation depends only on the number of lines, so it is replayed here on the rows in
attribute-file order (file names sorted, as the file lists them). It equals yunjey's split exactly when the
prepared dataset holds every row of the attribute file (no --limit, no rejected images).
"""

from __future__ import annotations

import random

import numpy as np

STARGAN_SEED = 1234
STARGAN_TEST_COUNT = 1999  # yunjey's `(i + 1) < 2000`
PROTOCOL_SPLITS = ("stargan-train", "stargan-test")


def stargan_test_mask(names: list[str], seed: int = STARGAN_SEED, test_count: int = STARGAN_TEST_COUNT) -> np.ndarray:
    """Boolean mask over `names` (dataset rows): True for the rows yunjey's loader puts in its test set."""
    order = sorted(range(len(names)), key=lambda i: names[i])  # attribute-file order
    rng = random.Random(seed)  # the same Mersenne Twister stream as random.seed(seed) + random.shuffle
    rng.shuffle(order)
    mask = np.zeros(len(names), dtype=bool)
    mask[order[:test_count]] = True
    return mask


def protocol_rows(names: list[str], split: str) -> np.ndarray:
    """Row indices (in dataset order) of `stargan-train` or `stargan-test`."""
    if split not in PROTOCOL_SPLITS:
        raise ValueError(f"unknown split protocol {split!r}")
    mask = stargan_test_mask(names)
    return np.flatnonzero(mask if split == "stargan-test" else ~mask).astype(np.int64)
