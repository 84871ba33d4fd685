"""CUDA inside the built images, checked on a machine without a GPU: the GPU image holds one CUDA major per library
and each loads (cuBLAS 12 for CTranslate2, torch's CUDA 13), CTranslate2 counts no device without an error; the
CPU image holds no CUDA library at all."""

from __future__ import annotations

import json
import re

import pytest

from tests.container.docker import image_size_bytes, run_in_image

PROBE = r"""
import ctypes, glob, json, os, re, site
from importlib.metadata import distributions
result = {}
ctypes.CDLL("libcublas.so.12") if os.environ.get("PROBE_CUBLAS") else None
import torch, ctranslate2
result["torch_cuda"] = torch.version.cuda
result["torch_cuda_available"] = torch.cuda.is_available()
result["ct2_cuda_devices"] = ctranslate2.get_cuda_device_count()
maps = open("/proc/self/maps").read()
result["loaded"] = sorted({m for m in re.findall(r"(/\S*/lib(?:cudart|cublas|cublasLt|cudnn)\S*\.so[.\d]*)", maps)})
site_packages = site.getsitepackages()[0]
names = (d.metadata["Name"] for d in distributions())
result["nvidia_packages"] = sorted(name for name in names if name.startswith("nvidia"))
result["cuda_files"] = sorted(os.path.relpath(p, site_packages) for p in glob.glob(site_packages + "/**/libcu*.so*",
                                                                                  recursive=True))
print(json.dumps(result))
"""


def _probe(image: str, *options: str) -> dict:
    return json.loads(run_in_image(image, PROBE, *options).strip().splitlines()[-1])


@pytest.fixture(scope="module")
def gpu_probe(gpu_image: str) -> dict:
    return _probe(gpu_image, "-e", "PROBE_CUBLAS=1")


def test_the_gpu_image_loads_cublas_12_for_ctranslate2_and_torchs_cuda_13(gpu_probe: dict):
    print("\nGPU image:", json.dumps(gpu_probe, indent=1))
    assert gpu_probe["torch_cuda"].startswith("13.")
    loaded = gpu_probe["loaded"]
    assert any("nvidia/cublas/lib/libcublas.so.12" in path for path in loaded), loaded
    assert any("/cu13/lib/libcudart.so.13" in path for path in loaded), "torch's CUDA runtime, loaded by import"


def test_ctranslate2_counts_no_cuda_device_without_an_error_and_torch_sees_none(gpu_probe: dict):
    assert gpu_probe["ct2_cuda_devices"] == 0 and gpu_probe["torch_cuda_available"] is False


def test_the_gpu_image_holds_one_cuda_major_per_library(gpu_probe: dict):
    """Torch's CUDA libraries are all CUDA 13 builds (nvidia/cu13, with cuDNN, cuSPARSELt, NCCL and NVSHMEM of their
    -cu13 packages); the only CUDA 12 package is cuBLAS 12, for CTranslate2. (Triton's wheel carries a CUPTI of its
    own inside triton/, on no loader path.)"""
    suffixed = {name: name.rsplit("-cu", 1)[1] for name in gpu_probe["nvidia_packages"]
                if re.search(r"-cu\d+$", name)}
    assert {name for name, major in suffixed.items() if major != "13"} == {"nvidia-cublas-cu12"}, suffixed
    torchs = ("nvidia/cu13/", "nvidia/cudnn/", "nvidia/cusparselt/", "nvidia/nccl/", "nvidia/nvshmem/")
    others = [path for path in gpu_probe["cuda_files"] if not path.startswith((*torchs, "triton/"))]
    assert others == ["nvidia/cublas/lib/libcublas.so.12", "nvidia/cublas/lib/libcublasLt.so.12"], others
    site_packages = "/app/.venv/lib/python3.11/site-packages/"
    loaded = [path.removeprefix(site_packages) for path in gpu_probe["loaded"]]
    assert all(path.startswith(torchs) or path in others for path in loaded), loaded


def test_the_cpu_image_holds_no_cuda_library(cpu_image: str, gpu_image: str):
    probe = _probe(cpu_image)
    print("\nCPU image:", json.dumps(probe, indent=1))
    assert probe["torch_cuda"] is None and probe["ct2_cuda_devices"] == 0
    # nvidia-ml-py is NVML's Python binding (the model pool asks NVML for GPU memory): no CUDA library.
    assert probe["nvidia_packages"] == ["nvidia-ml-py"], probe["nvidia_packages"]
    assert probe["cuda_files"] == [] and probe["loaded"] == []
    cpu, gpu = image_size_bytes(cpu_image), image_size_bytes(gpu_image)
    print(f"sizes: CPU {cpu / 1e9:.2f} GB, GPU {gpu / 1e9:.2f} GB")
    assert cpu < gpu / 2
