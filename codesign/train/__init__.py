"""Training: one loop (float, quantization-aware, distilled)."""

from codesign.train.loop import TrainConfig, TrainResult, ce_loss, evaluate, fit

__all__ = ["TrainConfig", "TrainResult", "ce_loss", "evaluate", "fit"]
