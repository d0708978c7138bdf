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
    from reflectchat.engine.llama_cpp_api import supports_gpu_offload, system_info

    info = system_info()
    compiled = [name for name, (_, _, marker) in BACKENDS.items() if marker in info]
    return supports_gpu_offload(), compiled
