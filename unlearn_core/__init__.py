"""I2I Unlearning Studio: make image-to-image models forget (Li et al., ICLR 2024).

Importing the package loads no model and touches no disk or GPU.
"""

__version__ = "0.1.0"
