"""models.toml: the shipped catalog is complete, and a broken one says where it is broken."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reflectchat.engine.base import TagFormat
from reflectchat.models.catalog import CatalogError, load_catalog
from reflectchat.models.fit import arch_params


def test_shipped_catalog_has_the_reasoning_models():
    catalog = load_catalog()
    repos = {m.repo for m in catalog.models}
    assert {"bartowski/Reflection-Llama-3.1-70B-GGUF", "leafspark/Reflection-Llama-3.1-70B-GGUF",
            "bartowski/DeepSeek-R1-Distill-Llama-70B-GGUF", "bartowski/Llama-3.3-70B-Instruct-GGUF",
            "Qwen/QwQ-32B-GGUF"} <= repos
    reflection = catalog.get("reflection-llama-3.1-70b")
    assert reflection.format == TagFormat.REFLECTION
    assert "inside <reflection> tags" in reflection.system_prompt
    assert (reflection.sampling.temperature, reflection.sampling.top_p) == (0.7, 0.95)
    assert (reflection.arch.layers, reflection.arch.kv_heads, reflection.arch.head_dim) == \
        (80, 8, 128)
    assert catalog.get("qwq-32b").format == TagFormat.THINK
    assert catalog.get("llama-3.3-70b-instruct").format == TagFormat.PLAIN


def test_the_catalog_has_each_reasoning_family_people_run():
    catalog = load_catalog()
    families = {m.id: m.format.name for m in catalog.models}
    assert {families[i] for i in ("gpt-oss-20b", "gpt-oss-120b")} == {"harmony"}
    assert (families["magistral-small-2509"], families["seed-oss-36b"],
            families["exaone-deep-32b"], families["granite-3.2-8b"]) == \
        ("magistral", "seed", "thought", "granite")
    assert families["qwen3-30b-a3b"] == families["glm-4.5-air"] == "think"
    moe = catalog.get("gpt-oss-120b").arch
    assert (moe.experts, moe.expert_ffn) == (128, 2880)
    assert 110e9 < arch_params(moe) < 125e9  # 117B parameters, its card says


def test_split_quants_list_every_shard_in_order():
    for model in load_catalog().models:
        for quant in model.quants:
            shards = [re.search(r"-(\d{5})-of-(\d{5})\.gguf$", f) for f in quant.files]
            if any(shards):
                count = int(shards[0][2])
                assert [int(m[1]) for m in shards] == list(range(1, count + 1)), quant.files
            else:
                assert len(quant.files) == 1
            # the size is the listed file size: between 1.5 and 9 bits per parameter
            assert 1.5 < quant.size * 8 / arch_params(model.arch) < 9, (model.id, quant.name)


def test_quant_lookup_is_case_insensitive_and_names_the_choices():
    model = load_catalog().get("qwq-32b")
    assert model.quant("q4_k_m").files == ("qwq-32b-q4_k_m.gguf",)
    with pytest.raises(CatalogError, match="choose one of Q8_0, Q6_K"):
        model.quant("Q1")


GOOD_MODEL = """
[[models]]
id = "m"
name = "M"
repo = "o/m"
format = "reflection"
system_prompt = ""
context_length = 8192
sampling = { temperature = 0.7 }
arch = { layers = 2, heads = 2, kv_heads = 1, head_dim = 4, hidden = 8, vocab = 10, ffn = 16 }

[[models.quants]]
name = "Q4"
size = 100
files = ["m.gguf"]
"""


def load_text(tmp_path: Path, text: str):
    path = tmp_path / "models.toml"
    path.write_text(text)
    return load_catalog(path)


def test_a_valid_custom_catalog_loads(tmp_path):
    assert load_text(tmp_path, GOOD_MODEL).get("m").quants[0].size == 100


@pytest.mark.parametrize(("old", "new", "message"), [
    ("size = 100", "size = -5", r"line 27 \(models\[1\]\.quants\[0\]\): 'size' must be a positive"),
    ('format = "reflection"', 'format = "xml"', r"line 17 \(models\[1\]\): 'format' must be"),
    ("kv_heads = 1", 'kv_heads = "8"', r"models\[1\]\.arch\): 'kv_heads' must be a positive"),
    ('repo = "o/m"', 'repo = "just-a-name"', r"'repo' must look like owner/name"),
    ('files = ["m.gguf"]', 'files = ["m.bin"]', r"'files' must list one or more \.gguf"),
    ("temperature = 0.7", "temp = 0.7", r"'sampling.temp' is not a known number setting"),
    ('id = "m"\n', "", r"'id' must be a non-empty string"),
    ("ffn = 16 }", "ffn = 16, experts = 8 }", r"a mixture of experts needs both 'experts' and"),
    ("ffn = 16 }", "ffn = 16, experts = 0, expert_ffn = 4 }", r"'experts' must be a positive"),
])
def test_errors_name_the_line_and_key(tmp_path, old, new, message):
    text = GOOD_MODEL.replace('id = "m"', 'id = "first"').replace('repo = "o/m"', 'repo = "o/x"')
    text += GOOD_MODEL.replace(old, new)
    with pytest.raises(CatalogError, match=message):
        load_text(tmp_path, text)


def test_syntax_errors_name_the_line(tmp_path):
    with pytest.raises(CatalogError, match=r"models.toml: .*line 3"):
        load_text(tmp_path, "[[models]]\nid = 'x'\nname = \n")


def test_duplicate_ids_are_refused(tmp_path):
    with pytest.raises(CatalogError, match="'id' 'm' is used twice"):
        load_text(tmp_path, GOOD_MODEL + GOOD_MODEL)
