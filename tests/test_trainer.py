import pytest
import torch

from segal_env.models import build_model
from segal_env.regions import LabeledRegions, RegionGrid
from segal_env.trainer import OptimConfig, SegTrainer, random_crops, warmup_cosine


def _trainer(seed=0):
    torch.manual_seed(seed)
    model = build_model("lraspp_mobilenet_v3", num_classes=3, dropout=0.0)
    return SegTrainer(model, 3, 255, device="cpu", optim=OptimConfig(lr=0.01), batch_size=2)


def test_pixels_outside_labeled_regions_contribute_nothing():
    grid = RegionGrid((32, 32), (16, 16))
    labeled = LabeledRegions(grid, num_images=2)
    labeled.mark(torch.tensor([0, 7]))
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    labels_a = torch.randint(0, 3, (2, 32, 32), dtype=torch.uint8)
    labels_b = torch.where(labeled.pixel_mask(), labels_a, (labels_a + 1) % 3)  # differs only outside
    index = torch.arange(2)
    grads = []
    for labels in (labels_a, labels_b, (labels_a + 1) % 3):
        trainer = _trainer()
        trainer.train_batch(images, labeled.masked_labels(labels, index, 255))
        grads.append(torch.cat([p.detach().flatten() for p in trainer.model.parameters()]))
    assert torch.equal(grads[0], grads[1])
    assert not torch.equal(grads[0], grads[2])  # a change inside the labeled regions does matter


def test_all_ignore_target_leaves_weights_unchanged():
    trainer = _trainer()
    before = [p.detach().clone() for p in trainer.model.parameters()]
    loss = trainer.train_batch(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.full((2, 32, 32), 255))
    assert loss == 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


def test_random_crops_contain_the_region_and_keep_pixels_aligned():
    full = torch.arange(20 * 30).view(20, 30)
    images = (full % 256).to(torch.uint8).expand(4, 3, 20, 30).contiguous()
    targets = images[:, 0].long()
    boxes = torch.tensor([[0, 0, 5, 5], [15, 25, 20, 30], [5, 10, 10, 20], [0, 0, 20, 30]])
    generator = torch.Generator().manual_seed(1)
    crops, crop_targets = random_crops(images, targets, boxes, (8, 12), generator)
    assert crops.shape == (4, 3, 8, 12) and crop_targets.shape == (4, 8, 12)
    assert torch.equal(crops[:, 0].long(), crop_targets)  # image and mask cropped and flipped together
    for b in range(3):  # every pixel of the box appears in the crop
        values = set((full[boxes[b, 0] : boxes[b, 2], boxes[b, 1] : boxes[b, 3]] % 256).flatten().tolist())
        assert values <= set(crop_targets[b].flatten().tolist())


def test_fit_improves_on_a_learnable_task_and_keeps_best():
    torch.manual_seed(0)
    images = torch.zeros(8, 3, 64, 64, dtype=torch.uint8)
    labels = torch.zeros(8, 64, 64, dtype=torch.long)
    images[:, :, :, 32:] = 255  # right half bright = class 1
    labels[:, :, 32:] = 1
    model = build_model("lraspp_mobilenet_v3", 2)
    trainer = SegTrainer(model, 2, 255, "cpu", OptimConfig("adam", 1e-2), batch_size=4, freeze_bn=False)
    start = trainer.evaluate(images, labels).miou
    boxes = torch.tensor([[0, 0, 64, 64]]).expand(8, 4)
    generator = torch.Generator().manual_seed(0)
    report = trainer.fit(
        images, labels, torch.arange(8), boxes, images, labels, (64, 64), generator, max_epochs=15, patience=15
    )
    after = trainer.evaluate(images, labels).miou
    assert after > start and after > 0.9
    assert abs(after - report["best_val_miou"]) < 1e-9


def test_warmup_cosine_rises_then_decays_to_zero():
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    schedule = warmup_cosine(optimizer, total_steps=20, warmup_fraction=0.1)
    lrs = []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[0] == pytest.approx(0.5) and lrs[1] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:])) and optimizer.param_groups[0]["lr"] == pytest.approx(0.0)


def test_start_network_is_the_same_for_every_thread_count(tmp_path):
    from segal_env.data import load_splits, make_roles
    from segal_env.start_network import load_or_pretrain

    splits = load_splits("synthetic", n_train=12, n_val=4, n_test=2)
    roles = make_roles("synthetic", splits, sizes={"d_s": 2, "d_t": 4})
    states = []
    threads = torch.get_num_threads()
    try:
        for count, cache in ((1, "one"), (2, "two")):
            torch.set_num_threads(count)
            state, report = load_or_pretrain(
                {"dataset": "synthetic", "model": "unet_tiny"},
                lambda: build_model("unet_tiny", 11),
                roles.d_s,
                roles.d_r,
                "cpu",
                {"seed": 0, "steps": 4, "lr": 1e-2},
                tmp_path / cache,
            )
            states.append(state)
            assert torch.get_num_threads() == count  # the caller's setting is restored
    finally:
        torch.set_num_threads(threads)
    assert [point["step"] for point in report["curve"]] == [1, 2, 3, 4]
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[0])


def test_batchnorm_recalibration_samples_the_whole_set_not_its_first_images():
    # a set stored in sequence order: 64 dark frames of one video, then 64 bright frames of another
    trainer = SegTrainer(torch.nn.BatchNorm2d(3), 3, 255, device="cpu", optim=OptimConfig(lr=0.01))
    images = torch.cat([torch.zeros(64, 3, 4, 4), torch.full((64, 3, 4, 4), 255.0)]).to(torch.uint8)
    trainer.recalibrate_batchnorm(images, max_images=16)
    whole_set = trainer._inputs(images).mean(dim=(0, 2, 3))
    torch.testing.assert_close(trainer.model.running_mean, whole_set, atol=1e-4, rtol=0)


def _recorded_picks(total: int, steps: int, batch_size: int, tail_share=None) -> list[list[int]]:
    """The sample indices of every batch ``train_steps`` draws (no network is trained)."""
    trainer = _trainer()
    trainer.batch_size = batch_size
    picks: list[list[int]] = []
    trainer._train_picked = lambda *args: picks.append(args[4].tolist()) or 0.0
    generator = torch.Generator().manual_seed(3)
    images, sample = torch.zeros(total, 1, 1, 1), torch.arange(total)
    trainer.train_steps(images, images, sample, sample, (1, 1), generator, steps, tail_share=tail_share)
    return picks


def test_a_fixed_share_of_every_batch_comes_from_the_trailing_samples():
    """final_start_share: the start set's images keep their place in the batches however many regions come."""
    picks = _recorded_picks(total=40, steps=12, batch_size=8, tail_share=(4, 0.5))
    assert all(len(p) == 8 and sum(i >= 36 for i in p) == 4 for p in picks)
    assert {i for p in picks for i in p if i < 36} == set(range(36))  # the others still walk all their samples
    assert all(len(set(p)) == 8 for p in picks)
    uniform = _recorded_picks(total=40, steps=12, batch_size=8)
    assert _recorded_picks(total=40, steps=12, batch_size=8, tail_share=(0, 0.5)) == uniform  # no tail: as before
    assert _recorded_picks(total=4, steps=3, batch_size=8, tail_share=(4, 0.5)) == _recorded_picks(4, 3, 8)
    assert sum(i >= 36 for p in uniform for i in p) < 4 * 12  # uniform draws give the 4 far fewer places
    with pytest.raises(ValueError, match="trailing samples"):
        _recorded_picks(total=4, steps=1, batch_size=2, tail_share=(5, 0.5))
