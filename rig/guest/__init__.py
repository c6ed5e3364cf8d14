"""Talking to dom0: the agent protocol, the console's stage machine, evidence collection over serial and SSH."""
