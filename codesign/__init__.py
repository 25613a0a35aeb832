"""codesign: hardware/algorithm co-design of spiking neural networks on IMC crossbars."""

__version__ = "0.1.0"
