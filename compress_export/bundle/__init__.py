"""Bundles: the folder written per target (nothing half-written), its reference data, reports, recipe and manifest
of hashes; the check `validate` makes before it trusts one; and the comparison of two bundles or runs."""
