"""Errors about model files, shared by the torch checkpoints and the ONNX exports (no torch)."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded safely, with the reason and the fix."""
