"""Loading a model safely, whatever framework it comes from."""

from .base import LoadedModel
from .loader import load_model

__all__ = ["LoadedModel", "load_model"]
