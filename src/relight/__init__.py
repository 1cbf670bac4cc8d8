"""relight: depth-guided any-to-any image relighting with S3Net (Lightning + Hydra)."""

__version__ = "0.1.0"
