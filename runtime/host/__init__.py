"""This host: CPU features, CUDA devices, and which variant of a module it runs."""
