"""Expected TF32 error of backend_parity's sliced unit (1x1 conv 20->30 channels, batch-norm
with batch statistics, hard-swish), relative to the output's scale: the float64 result
from TF32-rounded operands against the one from float32 operands, over 20 seeds.

    pip install numpy && python3 benches/gpu/tf32_error.py

CubeCL's tensor-core convolutions on CUDA read f32 operands as TF32 (10 explicit mantissa
bits); this is the error the CUDA tolerance in tests/backend-parity/tests/backend_parity.rs must admit."""
import numpy as np


def tf32(a):
    """Rounds float32 values to TF32 (nearest, ties away), kept in float32 storage."""
    bits = a.astype(np.float32).view(np.uint32)
    return ((bits + 0x1000) & 0xFFFFE000).view(np.float32)


def unit(x, w):
    y = np.einsum("oc,nchw->nohw", w.astype(np.float64), x.astype(np.float64))
    mean, var = y.mean(axis=(0, 2, 3), keepdims=True), y.var(axis=(0, 2, 3), keepdims=True)
    z = (y - mean) / np.sqrt(var + 1e-5) + 1e-4
    return z * np.clip(z + 3, 0, 6) / 6


errors = []
for seed in range(20):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (4, 20, 16, 16)).astype(np.float32)
    w = rng.normal(0, (1 / 24) ** 0.5, (30, 20)).astype(np.float32)
    exact, rounded = unit(x, w), unit(tf32(x), tf32(w))
    errors.append(np.abs(exact - rounded).max() / np.abs(exact).max())
print(f"TF32 output error / scale over 20 seeds: median {np.median(errors):.2e}, max {max(errors):.2e}")
