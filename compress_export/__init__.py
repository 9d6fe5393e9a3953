"""compress-export: compress a trained model, export it for a target, and prove the result."""

__version__ = "0.1.0"
