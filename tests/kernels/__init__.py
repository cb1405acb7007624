"""Tests of kernels/: the conformance of every face to the op contract (test_conformance.py over the
one table of cases.py), the faces' own machinery, and the toolchain that checks them."""
