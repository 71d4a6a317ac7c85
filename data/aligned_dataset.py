"""Paired images: infrared A and visible B of the same scene, pixel-registered.

Two layouts are accepted (``--aligned_layout auto`` picks by looking at the folders):

* ``ab``: upstream pix2pix's side-by-side files, ``<dataroot>/<phase>/*.png`` with A on
  the left half and B on the right half.
* ``folders``: two folders with matching relative file names (extensions may differ),
  either ``<dataroot>/<phase>/{A,B}/`` or ``<dataroot>/{A,B}/<phase>/``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from data.base_dataset import BaseDataset, SampleKey, to_model_range, to_tensor
from data.image_folder import find_images
from data.image_headers import check_files_quickly
from data.layout import ab_folders, pair_ab
from data.paired_transforms import sample_transform
from util.errors import BadImageError, UserError


def domain_channels(opt: argparse.Namespace) -> tuple[int, int]:
    """Channels of A (infrared) and B (visible): the network's input or output side,
    depending on the translation direction."""
    if opt.direction == "BtoA":
        return opt.output_nc, opt.input_nc
    return opt.input_nc, opt.output_nc


class AlignedDataset(BaseDataset):
    """Returns ``{'A', 'B', 'A_paths', 'B_paths'}`` with tensors in [-1, 1]."""

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.add_argument("--aligned_layout", default="auto", choices=["auto", "ab", "folders"],
                            help="side-by-side AB files, A/ + B/ folders, or detect")
        return parser

    @classmethod
    def has_split(cls, opt: argparse.Namespace, phase: str) -> bool:
        root = Path(opt.dataroot)
        return (root / phase).is_dir() or ab_folders(root, phase) is not None

    def __init__(self, opt: argparse.Namespace, phase: str) -> None:
        super().__init__(opt, phase)
        folders = ab_folders(self.root, phase) if opt.aligned_layout in ("auto", "folders") else None
        if opt.aligned_layout == "folders" and folders is None:
            raise UserError(
                f"--aligned_layout folders: neither {self.root / phase}/{{A,B}} nor {self.root}/{{A,B}}/{phase} exist"
            )
        self.is_side_by_side = folders is None
        self.channels_a, self.channels_b = domain_channels(opt)
        if folders is not None:
            self.pairs = self._match_folders(*folders)
        else:
            self.pairs = [(path, path) for path in find_images(self.root / phase)]
        self.pairs = self.pairs[: opt.max_dataset_size]
        what = f"split {phase} of {self.root}"
        if self.skip_bad:
            self.pairs = self.usable(self.pairs, what)
        else:
            # Empty or non-image files fail now, not hours into training (headers only: fast).
            check_files_quickly(sorted({path for pair in self.pairs for path in pair}), what)

    def _match_folders(self, folder_a: Path, folder_b: Path) -> list[tuple[Path, Path]]:
        pairing = pair_ab(folder_a, folder_b)
        self.unpaired(folder_a, pairing.only_first, folder_b, pairing.only_second, ("A", "B"))
        return [(path_a, path_b) for _, path_a, path_b in pairing.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: SampleKey) -> dict:
        index, rng = self.rng_for(key)
        path_a, path_b = self.pairs[index]
        image_a, image_b = self.read_item(self.pairs[index])
        transform = sample_transform(self.opt, image_a.shape[0], image_a.shape[1], rng, str(path_a))
        return {
            "A": to_model_range(transform(to_tensor(image_a))),
            "B": to_model_range(transform(to_tensor(image_b))),
            "A_paths": str(path_a),
            "B_paths": str(path_b),
        }

    def read_item(self, item: tuple[Path, Path]) -> tuple[np.ndarray, np.ndarray]:
        """The A and B images of a pair in [0, 1], checked to be usable with the options."""
        path_a, path_b = item
        if self.is_side_by_side:
            image_a, image_b = self._split_side_by_side(path_a)
        else:
            image_a = self.load_unit_image(path_a, self.channels_a)
            image_b = self.load_unit_image(path_b, self.channels_b)
            if image_a.shape[:2] != image_b.shape[:2]:
                raise BadImageError(
                    f"paired images differ in size: {path_a} is {image_a.shape[1]}x{image_a.shape[0]}, "
                    f"{path_b} is {image_b.shape[1]}x{image_b.shape[0]}; register or resize them to the same size",
                    path_a)
        sample_transform(self.opt, image_a.shape[0], image_a.shape[1], None, str(path_a))  # fits the crop?
        return image_a, image_b

    def _split_side_by_side(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        # Normalise each half on its own: 16-bit min-max must not mix infrared and visible.
        raw = self.read_raw(path)
        width = raw.shape[1]
        if width % 2:
            raise BadImageError(
                f"side-by-side image {path} has odd width {width}; an AB image must be two equal halves "
                f"(A left, B right). Use A/ and B/ folders for unpaired sizes", path)
        half = width // 2
        return self.to_unit(raw[:, :half], self.channels_a), self.to_unit(raw[:, half:], self.channels_b)
