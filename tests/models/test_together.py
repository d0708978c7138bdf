"""Whether two local models fit in memory at once (F10's comparisons): the second model is
planned in what the first leaves, and fits beside it only with the plan it gets alone."""

from __future__ import annotations

from pathlib import Path

from support.shaped_model import write_shaped_gguf

from reflectchat.models.fit import CardUse, Plan, Verdict, plan, shape_from_gguf
from reflectchat.models.hardware import GPU, Hardware
from reflectchat.models.together import fit_together, left_after

CTX = 4096
MIB = 1 << 20


def models(tmp_path: Path) -> tuple[Path, Path]:
    a = write_shaped_gguf(tmp_path / "a.gguf", n_layer=6, n_embd=512, zeros=True)
    b = write_shaped_gguf(tmp_path / "b.gguf", n_layer=4, n_embd=512, zeros=True)
    return Path(a), Path(b)


def needs(path: Path, hw: Hardware) -> tuple[int, int]:
    """(GPU bytes, RAM bytes) the plan gives `path` alone on `hw`."""
    chosen = plan(shape_from_gguf([path]), hw, CTX)
    return chosen.gpu_bytes, chosen.ram_bytes


def cpu_machine(ram: int) -> Hardware:
    return Hardware(8, 0, ram)


def gpu_machine(vram: int, ram: int = 64 << 30) -> Hardware:
    return Hardware(8, ram, ram, [GPU("GPU 0", "nvidia", vram, vram)], True, ["cuda"])


def test_on_a_cpu_two_models_fit_together_only_with_room_for_both(tmp_path):
    a, b = models(tmp_path)
    ram_a, ram_b = needs(a, cpu_machine(1 << 40))[1], needs(b, cpu_machine(1 << 40))[1]
    roomy = fit_together(a, b, CTX, CTX, cpu_machine(ram_a + ram_b + MIB))
    assert roomy.fits and roomy.why.startswith("both fit in RAM at once")
    tight = fit_together(a, b, CTX, CTX, cpu_machine(ram_a + ram_b - MIB))
    assert not tight.fits and tight.why.startswith("both do not fit in RAM at once")
    # each alone fits that machine: the check is of the two together
    assert needs(a, cpu_machine(ram_a + ram_b - MIB))[1] == ram_a


def test_on_a_gpu_the_second_fits_only_with_as_many_layers_there_as_alone(tmp_path):
    a, b = models(tmp_path)
    gpu_a, gpu_b = needs(a, gpu_machine(1 << 40))[0], needs(b, gpu_machine(1 << 40))[0]
    both = fit_together(a, b, CTX, CTX, gpu_machine(gpu_a + gpu_b + MIB))
    assert both.fits and "GPU memory" in both.why
    # room for A whole and B whole, not both: beside A, B would run (more slowly) in RAM
    squeezed = gpu_machine(gpu_a + gpu_b // 2)
    assert plan(shape_from_gguf([b]), squeezed, CTX).verdict is Verdict.FULL_GPU
    apart = fit_together(a, b, CTX, CTX, squeezed)
    assert not apart.fits and apart.why.startswith("both do not fit in GPU memory")


def test_left_after_takes_the_first_models_memory_off_each_card_and_the_ram():
    hw = gpu_machine(8 << 30, ram=32 << 30)
    used = Plan(33, 32, Verdict.FULL_GPU, 5 << 30, 2 << 30, 0, 0,
                (CardUse(hw.gpus[0], 32, True, 4 << 30, 5 << 30),))
    left = left_after(hw, used)
    assert left.gpus[0].free_bytes == 3 << 30 and left.ram_plan_bytes == hw.ram_plan_bytes - \
        (2 << 30)


def test_a_header_that_cannot_be_read_means_taking_turns(tmp_path):
    a, _ = models(tmp_path)
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\xff" * 64)
    verdict = fit_together(a, broken, CTX, CTX, cpu_machine(1 << 40))
    assert not verdict.fits and verdict.why.startswith("a model's header could not be read")
