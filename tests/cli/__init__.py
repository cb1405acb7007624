"""Tests of the alexnet-cuda command line, end to end."""
