"""Known accelerator kinds and their vendor specifications: memory capacity, memory bandwidth
and dense peak matrix throughput per dtype, each with its public source.

A spec is what the vendor prints, never a measurement: gfbench labels it "spec" wherever it
shows one and never uses it silently in place of a measured ceiling (gfbench.measure.ceilings).
Peaks are dense (no 2:4 sparsity) and converted to gfbench's FLOP convention, one fused
multiply-add = one FLOP: vendors count an FMA as two FLOPs, so their TFLOPS are halved here.
Memory capacity is the vendor's nominal figure in GiB (HBM/GDDR stacks are binary sized); a
device reports somewhat less as usable (ECC, the driver's reserve), which
``torch.cuda.mem_get_info`` gives on the device itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GIB = 1 << 30
TERA = 1e12

_H100 = "https://www.nvidia.com/en-us/data-center/h100/ (NVIDIA H100 Tensor Core GPU datasheet)"
_H200 = "https://www.nvidia.com/en-us/data-center/h200/ (NVIDIA H200 Tensor Core GPU datasheet)"
_A100 = "https://www.nvidia.com/en-us/data-center/a100/ (NVIDIA A100 Tensor Core GPU datasheet)"
_L4 = "https://www.nvidia.com/en-us/data-center/l4/ (NVIDIA L4 Tensor Core GPU datasheet)"
_ADA = ("https://images.nvidia.com/aem-dam/Solutions/geforce/ada/nvidia-ada-gpu-architecture.pdf"
        " (NVIDIA Ada GPU architecture whitepaper, GeForce RTX 4090 column)")


@dataclass(frozen=True)
class DeviceKind:
    """One accelerator model as its vendor specifies it."""

    name: str  # what users type: --fit-memory h100-sxm
    label: str  # what tables and figures print
    memory_gib: float  # nominal capacity
    bandwidth_tb_s: float  # vendor memory bandwidth, 10^12 bytes per second
    # dense peak of the tensor/matrix units per dtype, vendor TFLOPS (2 FLOPs per FMA)
    vendor_tflops: dict[str, float] = field(default_factory=dict)
    source: str = ""

    @property
    def memory_bytes(self) -> int:
        """Nominal capacity in bytes."""
        return int(self.memory_gib * GIB)

    @property
    def bandwidth_bytes_s(self) -> float:
        """Vendor memory bandwidth in bytes per second."""
        return self.bandwidth_tb_s * TERA

    def peak_macs_s(self, dtype: str) -> float | None:
        """Dense peak in multiply-adds per second (gfbench's convention), None if unlisted."""
        tflops = self.vendor_tflops.get(dtype)
        return None if tflops is None else tflops * TERA / 2


# Dense figures: the datasheets print TF32/BF16/FP16 tensor throughput with 2:4 sparsity and
# state that dense is half; the numbers below are those halves (FP32: the non-tensor figure).
KNOWN_DEVICES: dict[str, DeviceKind] = {kind.name: kind for kind in (
    DeviceKind("h100-sxm", "H100 SXM 80GB", 80, 3.35,
               {"fp32": 67.0, "tf32": 494.5, "bf16": 989.5, "fp16": 989.5}, _H100),
    DeviceKind("h100-pcie", "H100 PCIe 80GB", 80, 2.0,
               {"fp32": 51.0, "tf32": 378.0, "bf16": 756.5, "fp16": 756.5}, _H100),
    DeviceKind("h200", "H200 SXM 141GB", 141, 4.8,
               {"fp32": 67.0, "tf32": 494.5, "bf16": 989.5, "fp16": 989.5}, _H200),
    DeviceKind("a100-80gb", "A100 SXM 80GB", 80, 2.039,
               {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0}, _A100),
    DeviceKind("a100-40gb", "A100 SXM 40GB", 40, 1.555,
               {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0}, _A100),
    DeviceKind("l4", "L4 24GB", 24, 0.3,
               {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0, "fp16": 121.0}, _L4),
    DeviceKind("rtx-4090", "GeForce RTX 4090 24GB", 24, 1.008,
               {"fp32": 82.6, "tf32": 82.6, "bf16": 165.2, "fp16": 165.2}, _ADA),
)}


def device_kind(name: str) -> DeviceKind:
    """The known kind of that name (case-insensitive); KeyError lists the known ones."""
    kind = KNOWN_DEVICES.get(name.strip().lower())
    if kind is None:
        raise KeyError(f"unknown device kind {name!r}; known: {', '.join(KNOWN_DEVICES)}")
    return kind
