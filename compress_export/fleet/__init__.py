"""Fleets: `compress-export sweep` runs models x recipes as ordinary export runs on Ray (local by default), sharing
calibration statistics per model, skipping finished jobs, retrying lost workers, measuring one job at a time per
machine, and writing one fleet report."""
