"""datakit_titan: train datakit's built mixtures with TorchTitan (Contract 4).

Importing the package is cheap; torch and torchtitan load with the modules that need them.
"""

__version__ = "0.1.0"
