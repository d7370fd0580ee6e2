# Kept only so `pip install -e .` works with older pip; all metadata is in setup.cfg.
from setuptools import setup

setup()
