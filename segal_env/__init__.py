"""segal_env: region-level active learning for semantic segmentation as Gymnasium environments.

Importing the package registers the environments:

- ``SegAL-Synthetic-v0``: built-in synthetic street scenes, runs on a 2-core CPU (the default).
- ``SegAL-CamVid-v0``: CamVid (SegNet layout), pass ``data_root``; paper defaults (80x90 regions, K=24).
- ``SegAL-Cityscapes-v0``: Cityscapes (official layout), pass ``data_root``; paper defaults (128x128, K=256).
- ``SegAL-Folder-v0``: any folder of images + label PNGs; pass ``data_root``, ``dataset_kwargs`` and ``region_size``.
"""

from gymnasium.envs.registration import register, registry

from .config import EnvConfig
from .env import SegALEnv
from .layout import FeatureLayout
from .request_env import RequestEnv

__all__ = ["DEFAULT_ENV_ID", "ENV_IDS", "EnvConfig", "FeatureLayout", "RequestEnv", "SegALEnv"]
__version__ = "0.1.0"

DEFAULT_ENV_ID = "SegAL-Synthetic-v0"  # the built-in default: synthetic data, runs on a 2-core CPU

ENV_IDS = {
    "SegAL-Synthetic-v0": "synthetic",
    "SegAL-CamVid-v0": "camvid",
    "SegAL-Cityscapes-v0": "cityscapes",
    "SegAL-Folder-v0": "folder",
}

for _env_id, _dataset in ENV_IDS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point="segal_env.env:SegALEnv", kwargs={"dataset": _dataset})
