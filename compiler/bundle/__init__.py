"""The whole compile into one bundle: the build driver, the manifest's plan part, the bundle writer."""
