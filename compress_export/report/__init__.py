"""What a run says: the report of one target (JSON for CI, markdown for people; every quality number from the metric
registry), the language-model sections, and the plots."""
