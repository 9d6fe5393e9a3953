"""Small helpers every layer may use: lazy registry references, file hashes, quieter third-party loggers, and
capturing what native libraries print."""
