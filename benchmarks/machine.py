"""The machine a benchmark ran on, printed with every result: CPU model, vector flags, torch, load.

Numbers from different machine kinds (AVX2-only vs AMX CPUs differ by an order of magnitude in bf16)
or under different load are never compared; every benchmark prints this header first.
"""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

import torch

# the flags that decide matrix-product speed; the full list is in /proc/cpuinfo
VECTOR_PREFIXES = ("sse4", "avx", "fma", "amx", "f16c", "neon", "asimd", "sve")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") or line.startswith("Model"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """/proc/cpuinfo's flags (as ``hepnn.train.amp.cpu_flags``; read here too so that this header also
    prints when an older hepnn is on the path, e.g. the 'before' side of ab.py)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                return set(value.split())
    except OSError:
        pass
    return set()


def vector_flags() -> list[str]:
    return sorted(f for f in cpu_flags() if f.startswith(VECTOR_PREFIXES))


def describe() -> str:
    """A '#'-prefixed header: date, CPU model and vector flags, cores, load, torch, bf16 decision."""
    bf16 = bool(cpu_flags() & {"amx_bf16", "avx512_bf16"})  # train.amp=auto's CPU rule
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        f"# {datetime.date.today().isoformat()}  CPU: {cpu_model()}, {os.cpu_count()} cores, load {load:.2f}",
        f"# CPU flags: {' '.join(vector_flags()) or 'unknown'}",
        f"# torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
        f"threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; "
        f"train.amp=auto -> {'bf16' if bf16 else 'fp32'} on CPU",
    ]
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        lines.append(f"# GPU: {name}, compute capability {'.'.join(map(str, torch.cuda.get_device_capability()))}")
    return "\n".join(lines)


def matmul_rate(dtype: torch.dtype, n: int = 1024, seconds: float = 1.0) -> float:
    """GFLOP/s of one ``n``×``n`` matrix product in ``dtype`` on the CPU, per process CPU second."""
    import time

    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b  # warm-up
    count, t0 = 0, time.process_time()
    while time.process_time() - t0 < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.process_time() - t0) / 1e9


if __name__ == "__main__":
    # `python benchmarks/machine.py`: the header and what bf16 is worth here (12x fp32 with AMX,
    # ~2x with avx512_bf16 alone, emulated and slower with AVX2 only)
    torch.set_num_threads(1)
    print(describe())
    fp32, bf16 = matmul_rate(torch.float32), matmul_rate(torch.bfloat16)
    print(f"# one thread, 1024x1024 matrix product: fp32 {fp32:.0f} GFLOP/s, bf16 {bf16:.0f} GFLOP/s "
          f"({bf16 / fp32:.1f}x)")
