"""What the installed llama.cpp was built for: a plain `pip install` builds it for the CPU only,
silently, so `doctor`, `hw` and the memory plan ask the build itself."""

from __future__ import annotations

# accelerator -> (what it is, llama.cpp build flag, marker in llama.cpp's system info)
BACKENDS = {
    "cuda": ("NVIDIA CUDA", "-DGGML_CUDA=on", "CUDA"),
    "metal": ("Apple Metal", "-DGGML_METAL=on", "Metal"),
    "rocm": ("AMD ROCm", "-DGGML_HIP=on", "ROCm"),
    "vulkan": ("Vulkan", "-DGGML_VULKAN=on", "Vulkan"),
}


def build_backends() -> tuple[bool, list[str]]:
    """Whether llama.cpp can offload, and the accelerators it was compiled for."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    compiled = [name for name, (_, _, marker) in BACKENDS.items() if marker in info]
    return bool(llama_cpp.llama_supports_gpu_offload()), compiled
