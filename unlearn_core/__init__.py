"""I2I Unlearning Studio: make image-to-image models forget (Li et al., ICLR 2024).

Importing the package loads no model and touches no disk or GPU.
"""

import sys
from pathlib import Path

__version__ = "0.1.0"


def shipped(name: str) -> Path:
    """Where data shipped with the package lies (`assets`, `checkpoints`): beside the package in a
    source checkout or an editable install, else under the install prefix's `share/unlearn-core`
    (where `pip install .` puts the wheel's data files)."""
    beside = Path(__file__).resolve().parent.parent / name
    installed = Path(sys.prefix) / "share" / "unlearn-core" / name
    return installed if not beside.exists() and installed.exists() else beside
