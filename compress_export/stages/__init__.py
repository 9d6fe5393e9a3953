"""The pipeline's stages: each a function over the job, in the order pipeline.STAGES lists them."""
