"""A draft model planned beside its model (`models FILE --draft-model`): its memory, where it
goes, the speed-up to expect; and a file's MTP heads named, as this build cannot use them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support.shaped_model import write_shaped_gguf

from reflectchat.models.catalog import CatalogError, catalog_file, load_catalog
from reflectchat.models.draft_plan import speedup


def models(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reflectchat", "models", *args],
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "COLUMNS": "100"})


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pair")
    big = write_shaped_gguf(folder / "big.gguf", n_layer=8, n_embd=512, n_head=8, n_ff=2048,
                            zeros=True)  # 62 MiB
    small = write_shaped_gguf(folder / "small.gguf", n_layer=2, n_embd=256, n_head=4, n_ff=512)
    return big, small


def test_the_speed_up_follows_the_bound():
    assert speedup(0.0, 4, 0.1) == pytest.approx(1 / 1.4)
    assert speedup(1.0, 4, 0.0) == 5
    assert speedup(0.75, 4, 0.1) == pytest.approx((1 - 0.75 ** 5) / 0.25 / 1.4)


def test_a_draft_goes_on_the_gpu_beside_a_model_wholly_there(pair):
    big, small = pair
    done = models(str(big), "--draft-model", str(small), "--gpu", "24GiB", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    draft = plan["draft"]
    assert plan["placement"] == "full GPU" and draft["gpu"]
    assert draft["weights_bytes"] == small.stat().st_size
    assert draft["kv_bytes"] > 0 and draft["compute_bytes"] > 0
    assert 0 < draft["cost"] < 0.2  # the small model reads a fraction of what the big one does
    assert draft["speedups"]["0.75"] > draft["speedups"]["0.60"] > 1


def test_a_draft_beside_a_model_partly_in_ram_goes_to_ram_and_is_counted(pair):
    big, small = pair
    done = models(str(big), "--draft-model", str(small), "--gpu", "48MiB", "--ram", "64GiB")
    assert done.returncode == 0, done.stderr
    assert "draft: small.gguf" in done.stdout and "in RAM" in done.stdout
    assert "of RAM with the model's" in done.stdout


def test_a_draft_that_is_not_a_model_is_one_sentence(pair, tmp_path):
    big, _ = pair
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf at all")
    done = models(str(big), "--draft-model", str(broken))
    assert done.returncode != 0
    assert "cannot plan the draft model" in done.stderr and "Traceback" not in done.stderr


def test_mtp_heads_are_named_with_what_this_build_can_do(tmp_path):
    path = write_shaped_gguf(tmp_path / "mtp.gguf", n_layer=2, n_embd=256, n_head=4, n_ff=512,
                             mtp_layers=1)
    done = models(str(path))
    assert done.returncode == 0, done.stderr
    assert "1 MTP layer" in done.stdout and "cannot use them yet" in done.stdout
    assert json.loads(models(str(path), "--json").stdout)["mtp_layers"] == 1
    plain = write_shaped_gguf(tmp_path / "plain.gguf", n_layer=2, n_embd=256, n_head=4,
                              n_ff=512)
    assert "MTP" not in models(str(plain)).stdout


def test_each_catalog_draft_is_a_smaller_model_of_the_same_vocabulary():
    catalog = load_catalog()
    drafted = [m for m in catalog.models if m.draft]
    assert len(drafted) >= 4
    for model in drafted:
        draft = catalog.get(model.draft)
        assert abs(draft.arch.vocab - model.arch.vocab) <= 128, model.id
        assert max(q.size for q in draft.quants) * 3 < min(q.size for q in model.quants)


def test_a_draft_the_catalog_does_not_hold_is_refused(tmp_path):
    text = catalog_file().read_text(encoding="utf-8").replace(
        'draft = "qwen3-0.6b"', 'draft = "qwen3-0.1b"', 1)
    (tmp_path / "models.toml").write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError, match=r"'draft' 'qwen3-0\.1b' is not another model"):
        load_catalog(tmp_path / "models.toml")


def test_models_names_the_catalogs_draft():
    done = subprocess.run([sys.executable, "-m", "reflectchat", "models", "qwen3-8b"],
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())
    assert "draft: qwen3-0.6b (Q8_0 0.6 GiB)" in said and "--draft-model qwen3-0.6b" in said
