import pytest
import torch

from segal_env.models import MODELS, build_model


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


def test_mc_dropout_samples_differ_but_encoder_runs_once():
    torch.manual_seed(0)
    model = build_model("lraspp_mobilenet_v3", num_classes=4, dropout=0.5).eval()
    calls = []
    model.backbone.register_forward_hook(lambda *args: calls.append(1))
    x = torch.randn(2, 3, 64, 64)
    mc = model.mc_probabilities(x, samples=5)
    assert mc.shape[:3] == (5, 2, 4)
    assert len(calls) == 1
    assert not torch.allclose(mc[0], mc[1])
    assert torch.allclose(mc.sum(2), torch.ones_like(mc.sum(2)), atol=1e-5)
    assert not model.training and not model.dropout.training  # eval mode restored


def test_eval_mode_is_deterministic():
    model = build_model("lraspp_mobilenet_v3", num_classes=4).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
