"""``segal-request``: ask a labelling policy which regions of your unlabelled images a person should label next.

    segal-request --images my_unlabeled/ --labeled my_labeled/ --class-names road car person ... \\
        --train-model --policy entropy --budget 240 --region-size 90 80 --out requests/
    segal-request ... --model requests/network.pt --policy runs/x/model.zip ...   # a saved agent, a saved network

``--labeled`` holds what you have labelled (``images/*`` and ``labels/<stem>.png``, class ids 0..C-1 and the
ignore value); ``--images`` the images nobody has labelled. Every input is checked first (inputs.py), in
seconds; then the network is either trained on the labelled folder (``--train-model``, with progress, saved as
``network.pt`` for the next round) or loaded (``--model``) (network.py). The policy chooses in pools, step by
step, on the same candidate features as the simulation (segal_env.RequestEnv, played by
experiments.episodes.play_episode: selection.py); no label of ``--images`` is ever read. Outputs in ``--out``:

- ``requests.json``: per image its requested regions (box in pixels of the original image, order of choice,
  step, the policy's score, the features behind it) and the run's settings (absolute paths);
- ``label_studio/tasks.json`` + ``label_studio/label_config.xml``: Label Studio tasks with one rectangle
  pre-annotation per requested region (the image's best score as the prediction's ``score``), image URLs Label
  Studio's local-files storage serves, and a labelling interface (brush per class) (label_studio.py);
- ``overlays/<image>.png``: each image with its requested regions outlined and numbered.

After annotation, ``segal-merge-labels`` (merge.py) brings the labelled regions back into ``--labeled`` from
Label Studio's own exports (exports.py, brush.py); api.py creates the Label Studio project, its storage and tasks.
"""

from __future__ import annotations

from .brush import decode_rle, encode_rle
from .command import build_parser, draw_overlay, main, request_labels
from .inputs import check_inputs, load_labeled, load_unlabeled
from .label_studio import label_studio_config, label_studio_tasks
from .merge import merge_annotations, merge_main
from .network import DEFAULT_ARCH, DEFAULT_TRAIN_STEPS, build_network

__all__ = [
    "DEFAULT_ARCH",
    "DEFAULT_TRAIN_STEPS",
    "build_network",
    "build_parser",
    "check_inputs",
    "decode_rle",
    "draw_overlay",
    "encode_rle",
    "label_studio_config",
    "label_studio_tasks",
    "load_labeled",
    "load_unlabeled",
    "main",
    "merge_annotations",
    "merge_main",
    "request_labels",
]
