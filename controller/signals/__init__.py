"""The signal receiver: ``python -m controller.signals`` turns authenticated webhook signals into Positions."""
