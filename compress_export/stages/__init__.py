"""The pipeline's stages: each a function over the one job state, ordered by the stage lists in pipeline.py (one per
task family). Stages orchestrate; what they compute lives in the packages below them."""
