import pytest
import torch

from segal_env.models import MODELS, MaskDropout, build_model


@pytest.mark.parametrize("name", ["lraspp_mobilenet_v3", "deeplabv3_mobilenet_v3", "fpn_resnet50"])
def test_model_outputs_full_resolution_logits(name):
    model = build_model(name, num_classes=5).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 96))
    assert out.shape == (1, 5, 64, 96)


def test_factory_lists_models_on_unknown_name():
    with pytest.raises(ValueError, match="lraspp_mobilenet_v3"):
        build_model("unet9000", num_classes=3)
    assert {"lraspp_mobilenet_v3", "fcn_resnet50", "deeplabv3_resnet50", "fpn_resnet50"} <= set(MODELS)


def test_mc_dropout_bald_runs_the_encoder_once_and_is_zero_without_dropout():
    torch.manual_seed(0)
    model = build_model("lraspp_mobilenet_v3", num_classes=4, dropout=0.5).eval()
    with torch.no_grad():  # confident logits, so that dropout draws visibly disagree
        model.low_classifier.weight.mul_(50)
        model.high_classifier.weight.mul_(50)
    calls = []
    model.backbone.register_forward_hook(lambda *args: calls.append(1))
    x = torch.randn(2, 3, 64, 64)
    mi = model.mc_mutual_information(x, samples=5)
    assert mi.shape[0] == 2 and mi.ndim == 3
    assert len(calls) == 1
    assert (mi >= 0).all() and mi.max() > 1e-2  # dropout draws disagree somewhere
    assert not model.training and not model.dropout.training  # eval mode restored
    model.dropout.p = 0.0
    assert torch.allclose(model.mc_mutual_information(x, samples=3), torch.zeros_like(mi), atol=1e-5)


def test_eval_mode_is_deterministic():
    model = build_model("lraspp_mobilenet_v3", num_classes=4).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_mask_dropout_keeps_the_expectation_and_drops_the_right_share():
    torch.manual_seed(0)
    x = torch.ones(200_000)
    layer = MaskDropout(0.3).train()
    out = layer(x)
    assert abs((out == 0).float().mean().item() - 0.3) < 0.01
    assert abs(out.mean().item() - 1.0) < 0.01
    assert torch.equal(layer.eval()(x), x)
    assert torch.equal(MaskDropout(1.0).train()(x), torch.zeros_like(x))
