"""Assertion modules: turn parsed artefacts into findings, and findings + expectations into checks."""
