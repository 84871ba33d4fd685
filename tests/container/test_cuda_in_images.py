"""CUDA inside the built images, checked on a machine without a GPU: the GPU image holds one CUDA major per library
and each loads (cuBLAS 12 for CTranslate2, torch's CUDA 13), CTranslate2 counts no device without an error; the
CPU image holds no CUDA library at all."""

from __future__ import annotations

import json

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
    """cuBLAS 12 is the only CUDA 12 package (for CTranslate2); every other CUDA library is one of torch's, under
    nvidia/cu13 (CUDA 13)."""
    cu12 = [name for name in gpu_probe["nvidia_packages"] if name.endswith("-cu12")]
    assert cu12 == ["nvidia-cublas-cu12"], gpu_probe["nvidia_packages"]
    assert not [name for name in gpu_probe["nvidia_packages"] if name.endswith("-cu11")]
    outside_cu13 = [path for path in gpu_probe["cuda_files"] if not path.startswith("nvidia/cu13/")]
    assert outside_cu13 and all(path.startswith("nvidia/cublas/lib/libcublas") and ".so.12" in path
                                for path in outside_cu13), outside_cu13


def test_the_cpu_image_holds_no_cuda_library(cpu_image: str, gpu_image: str):
    probe = _probe(cpu_image)
    print("\nCPU image:", json.dumps(probe, indent=1))
    assert probe["torch_cuda"] is None and probe["ct2_cuda_devices"] == 0
    assert probe["nvidia_packages"] == [] and probe["cuda_files"] == [] and probe["loaded"] == []
    cpu, gpu = image_size_bytes(cpu_image), image_size_bytes(gpu_image)
    print(f"sizes: CPU {cpu / 1e9:.2f} GB, GPU {gpu / 1e9:.2f} GB")
    assert cpu < gpu / 2
