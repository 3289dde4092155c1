"""Errors the kit raises for bad input. Each message says what was wrong and what to do."""


class ProxIQALabError(Exception):
    """Base class of the kit's own errors; the CLI prints these without a traceback."""


class DataNotFoundError(ProxIQALabError, FileNotFoundError):
    """A dataset or file is missing; the message names the command that fetches it."""


class ImageError(ProxIQALabError, ValueError):
    """An image cannot be read, or its size or format is unusable."""


class MetricError(ProxIQALabError, ValueError):
    """A quality metric cannot be computed for the given inputs."""


class BitstreamError(ProxIQALabError, ValueError):
    """A bitstream is truncated, corrupt, or was not written by this kit."""


class CheckpointError(ProxIQALabError, ValueError):
    """A checkpoint is missing, corrupt, or does not describe a known model."""


class TrainingError(ProxIQALabError, RuntimeError):
    """Training cannot go on (for example a NaN or Inf loss)."""


class ZooError(ProxIQALabError, ValueError):
    """A shipped model or a run archive is missing, altered, damaged, or not one of the kit's."""
