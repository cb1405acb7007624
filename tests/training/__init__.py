"""Tests of alexnet_cuda's model and trainer; support.py holds their shared fixtures and data."""
