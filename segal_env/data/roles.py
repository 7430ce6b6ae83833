"""The paper's data roles (D_S, D_T, D_R, D_V, test) carved out of loaded splits.

D_S: state set; D_T: pool the agent trains on; D_R: reward set; D_V: pool the trained agent is
evaluated on; test: final score. Where each comes from and its default size depend on the data set
(see ROLE_PLANS and docs/datasets.md). Without a roles file the draw is a permutation of the train
split by ``seed`` (numpy Generator), so the same seed always gives the same roles.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .base import SegDataset

ROLE_KEYS = ("d_s", "d_t", "d_r", "d_v")
FILE_KEYS = ("d_s", "d_t", "d_v")  # required in a roles file; "d_r" is optional


@dataclass(frozen=True)
class RolePlan:
    """Default sizes; d_r_from_train says whether D_R is drawn from train (else it is the val split)."""

    d_s: int
    d_t: int
    d_r_from_train: bool = False
    d_r: int | None = None  # only used when d_r_from_train


ROLE_PLANS = {
    "camvid": RolePlan(d_s=10, d_t=100),
    "cityscapes": RolePlan(d_s=10, d_t=150, d_r_from_train=True, d_r=200),
    "synthetic": RolePlan(d_s=6, d_t=60),
}
DATASET_NAMES = ("synthetic", "camvid", "cityscapes", "folder")
CAMVID_TRAIN_SIZE = 367  # the folder source scales CamVid's role sizes to its own train split


@dataclass
class ALRoles:
    d_s: SegDataset
    d_t: SegDataset
    d_r: SegDataset
    d_v: SegDataset
    test: SegDataset

    def to_dict(self) -> dict[str, list[str]]:
        """Role -> file names, for logs and for writing a roles file that reproduces this draw."""
        return {role: list(getattr(self, role).names) for role in (*ROLE_KEYS, "test")}


def _folder_plan(splits: dict[str, SegDataset]) -> RolePlan:
    """CamVid's sizes when train is as large as CamVid's, proportionally fewer for smaller folders."""
    n = len(splits["train"])
    d_s = min(10, max(1, round(n * 10 / CAMVID_TRAIN_SIZE)))
    d_t = min(100, max(1, round(n * 100 / CAMVID_TRAIN_SIZE)))
    if "val" in splits:
        return RolePlan(d_s=d_s, d_t=d_t)
    return RolePlan(d_s=d_s, d_t=d_t, d_r_from_train=True, d_r=max(1, round(0.2 * n)))


def _tag(ds: SegDataset, role: str) -> SegDataset:
    """A view with the role in its meta; never mutates the caller's split (D_R may be the val split itself)."""
    return replace(ds, meta={**ds.meta, "role": role})


def _check_sizes(sizes: dict[str, int]) -> None:
    unknown = sorted(set(sizes) - set(ROLE_KEYS))
    if unknown:
        raise ValueError(f"unknown role size key(s) {unknown}; valid keys: {list(ROLE_KEYS)}")
    bad = {k: v for k, v in sizes.items() if not isinstance(v, (int, np.integer)) or v < 1}
    if bad:
        raise ValueError(f"role sizes must be positive integers, got {bad}")


def _draw_roles(
    plan: RolePlan, splits: dict[str, SegDataset], seed: int, sizes: dict[str, int]
) -> dict[str, SegDataset]:
    train = splits["train"]
    wanted = {"d_s": sizes.get("d_s", plan.d_s), "d_t": sizes.get("d_t", plan.d_t)}
    if plan.d_r_from_train:
        wanted["d_r"] = sizes.get("d_r", plan.d_r)
    if "d_v" in sizes:
        wanted["d_v"] = sizes["d_v"]
    needed = sum(wanted.values()) + (0 if "d_v" in wanted else 1)  # D_V = the rest: at least one image
    if needed > len(train):
        raise ValueError(
            f"roles need {needed} train images ({', '.join(f'{k}={v}' for k, v in wanted.items())}"
            f"{'' if 'd_v' in wanted else ' + at least 1 for d_v'}) but the train split has {len(train)} images; "
            "pass smaller sizes={...}"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train))
    roles, start = {}, 0
    for role, count in wanted.items():
        roles[role] = train.subset(sorted(order[start : start + count].tolist()))
        start += count
    if "d_v" not in roles:
        roles["d_v"] = train.subset(sorted(order[start:].tolist()))
    if not plan.d_r_from_train:
        val = splits["val"]
        if "d_r" in sizes:
            if sizes["d_r"] > len(val):
                raise ValueError(
                    f"d_r={sizes['d_r']} but the val split (D_R) has {len(val)} images; pass a smaller d_r"
                )
            roles["d_r"] = val.subset(sorted(rng.permutation(len(val))[: sizes["d_r"]].tolist()))
        else:
            roles["d_r"] = val
    return roles


def _roles_from_file(plan: RolePlan, splits: dict[str, SegDataset], roles_file: Path) -> dict[str, SegDataset]:
    if not roles_file.is_file():
        raise FileNotFoundError(f"roles file not found: {roles_file}")
    lists = json.loads(roles_file.read_text())
    missing_keys = [k for k in FILE_KEYS if k not in lists]
    if missing_keys:
        raise ValueError(
            f"roles file {roles_file} lacks key(s) {missing_keys}; it needs lists for {list(FILE_KEYS)} (d_r optional)"
        )
    if plan.d_r_from_train and "d_r" not in lists:
        raise ValueError(f"roles file {roles_file} has no 'd_r' list; this data set draws D_R from train, so list it")
    train_roles = [k for k in ROLE_KEYS if k in lists and (k != "d_r" or plan.d_r_from_train)]
    seen: dict[str, str] = {}
    for role in train_roles:
        duplicates = sorted(n for n, count in Counter(lists[role]).items() if count > 1)
        if duplicates:
            raise ValueError(f"roles file {roles_file}: '{role}' lists {duplicates[:5]} more than once")
        overlap = sorted(n for n in lists[role] if n in seen)
        if overlap:
            raise ValueError(
                f"roles file {roles_file}: '{role}' and '{seen[overlap[0]]}' overlap, e.g. {overlap[:5]}; roles must be disjoint"
            )
        seen.update({n: role for n in lists[role]})
    roles = {}
    for role in ROLE_KEYS:
        if role not in lists:
            continue
        source_name = "train" if role != "d_r" or plan.d_r_from_train else "val"
        source = splits[source_name]
        known = set(source.names)
        absent = [n for n in lists[role] if n not in known]
        if absent:
            raise ValueError(
                f"roles file {roles_file}: {len(absent)} name(s) of '{role}' are not in the {source_name} split "
                f"({len(source)} images), e.g. {absent[:3]}; check the file belongs to this data set"
            )
        roles[role] = source.select_names(lists[role])
    roles.setdefault("d_r", splits["val"])
    return roles


def make_roles(
    name: str,
    splits: dict[str, SegDataset],
    roles_file: str | Path | None = None,
    seed: int = 0,
    sizes: dict[str, int] | None = None,
) -> ALRoles:
    """Split loaded data into the AL roles: exactly as a roles file lists them, or drawn by ``seed``.

    ``sizes`` overrides the default role sizes (keys d_s, d_t, d_r, d_v); d_v defaults to "the rest".
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown data set {name!r}; valid names: {list(DATASET_NAMES)}")
    missing_splits = [s for s in ("train", "val", "test") if s not in splits]
    if "val" in missing_splits and name == "folder":
        missing_splits.remove("val")  # a folder without val draws D_R from train
    if missing_splits:
        raise ValueError(f"splits lack {missing_splits}; pass the dict returned by load_splits({name!r}, ...)")
    plan = _folder_plan(splits) if name == "folder" else ROLE_PLANS[name]
    if roles_file is not None:
        if sizes:
            raise ValueError("sizes cannot be combined with roles_file: the file fixes every role")
        roles = _roles_from_file(plan, splits, Path(roles_file))
    else:
        _check_sizes(sizes or {})
        roles = _draw_roles(plan, splits, seed, sizes or {})
    return ALRoles(**{role: _tag(ds, role) for role, ds in roles.items()}, test=_tag(splits["test"], "test"))
