"""Tasks built on the engine: interpolation, extrapolation, and the shared image ↔ point helpers."""
